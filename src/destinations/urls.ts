import { parseAmqpUrl } from "./amqp/url.js";
import { parseNatsUrl } from "./nats/url.js";
import { parseRedisStreamUrl } from "./redis-stream/url.js";
import type { BrokerAddress } from "./url-params.js";

/** How a broker scheme's URLs are checked at save time, and which vault credentials it takes. */
export interface BrokerUrlSpec {
  kind: string;
  parse: (url: URL) => BrokerAddress;
  /** `auth` types an endpoint of this kind may use (credentials come from the vault). */
  auth: readonly ("basic" | "bearer")[];
}

/**
 * The broker URL forms, without their clients: `endpoints/` checks URLs against this table and
 * never loads a broker library. Secure variants (`amqps:`, `rediss:`, `tls:`) are not offered yet.
 */
export const BROKER_URLS: ReadonlyMap<string, BrokerUrlSpec> = new Map<string, BrokerUrlSpec>([
  ["amqp:", { kind: "amqp", parse: parseAmqpUrl, auth: ["basic"] }],
  ["nats:", { kind: "nats", parse: parseNatsUrl, auth: ["basic", "bearer"] }],
  ["redis:", { kind: "redis-stream", parse: parseRedisStreamUrl, auth: ["basic", "bearer"] }],
]);
