import type { BrokerKindOptions } from "./connection-pool.js";
import { AmqpDestination } from "./amqp/index.js";
import { NatsDestination } from "./nats/index.js";
import { RedisStreamDestination } from "./redis-stream/index.js";
import { DestinationRegistry } from "./registry.js";

/**
 * Every broker kind, each connecting only to addresses `policy` allows (the policy of HTTP
 * deliveries: `--allow-private-networks` applies to brokers too).
 */
export function brokerDestinations(opts: BrokerKindOptions): DestinationRegistry {
  return new DestinationRegistry().register(new AmqpDestination(opts)).register(new NatsDestination(opts)).register(new RedisStreamDestination(opts));
}

export { DestinationRegistry } from "./registry.js";
export type { DestinationKind, DestinationOutcome, DestinationRequest, BrokerCredentials } from "./kind.js";
