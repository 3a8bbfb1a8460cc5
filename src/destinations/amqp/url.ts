import { brokerAddress, brokerName, queryParams, type BrokerAddress } from "../url-params.js";

/** Where an AMQP 0-9-1 destination publishes. */
export interface AmqpTarget extends BrokerAddress {
  vhost: string;
  exchange: string;
  routingKey: string;
}

/**
 * `amqp://host[:5672][/vhost]?exchange=X[&routingKey=Y]` publishes to exchange X;
 * `amqp://host[:5672][/vhost]?queue=Q` publishes to queue Q through the default exchange.
 * An empty path means the vhost `/` (write another vhost percent-encoded: `/%2Fprod` is `/prod`).
 * AMQP short strings are at most 255 bytes.
 */
export function parseAmqpUrl(url: URL): AmqpTarget {
  const address = brokerAddress(url, 5672);
  const q = queryParams(url, ["exchange", "routingKey", "queue"]);
  const path = url.pathname;
  let vhost = "/";
  if (path !== "" && path !== "/") {
    if (path.indexOf("/", 1) !== -1) throw new Error("The path is the vhost; percent-encode a / inside it as %2F");
    let decoded: string;
    try {
      decoded = decodeURIComponent(path.slice(1));
    } catch {
      throw new Error("The vhost is not valid percent-encoded UTF-8");
    }
    vhost = brokerName("The vhost", decoded, 255);
  }
  const exchange = q.get("exchange");
  const queue = q.get("queue");
  if ((exchange === undefined) === (queue === undefined)) throw new Error("Give exactly one of exchange= or queue=");
  if (queue !== undefined) {
    if (q.has("routingKey")) throw new Error("routingKey= goes with exchange=, not queue=");
    return { ...address, vhost, exchange: "", routingKey: brokerName("queue", queue, 255) };
  }
  const routingKey = q.get("routingKey") ?? "";
  if (routingKey !== "") brokerName("routingKey", routingKey, 255);
  return { ...address, vhost, exchange: brokerName("exchange", exchange!, 255), routingKey };
}
