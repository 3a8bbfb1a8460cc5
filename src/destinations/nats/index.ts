import { jetstream, JetStreamApiError, type JetStreamClient } from "@nats-io/jetstream";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import type { ErrorCode } from "../../errors/index.js";
import { ConnectionPool, poolKey, vetHost, type BrokerKindOptions } from "../connection-pool.js";
import type { BrokerCredentials, DestinationKind, DestinationOutcome, DestinationRequest } from "../kind.js";
import { settle } from "../outcome.js";
import { parseNatsUrl, type NatsTarget } from "./url.js";

interface NatsLink {
  nc: NatsConnection;
  js: JetStreamClient;
  drop: () => void;
}

/** JetStream API error 10060: the stream that captured the subject is not the expected one. */
const STREAM_NOT_MATCH = 10060;

function classify(err: unknown, target: NatsTarget): { code: ErrorCode; detail: string } | undefined {
  const name = (err as Error)?.name ?? "";
  if (err instanceof JetStreamApiError) {
    if (err.code === STREAM_NOT_MATCH) return { code: "E_BROKER_NOT_FOUND", detail: `Subject "${target.subject}" is not captured by stream "${target.stream ?? ""}"` };
    return { code: "E_BROKER_REJECTED", detail: `JetStream refused the message: ${err.message.slice(0, 300)} (${err.code})` };
  }
  if (name === "JetStreamNotEnabled" || name === "NoRespondersError") {
    return { code: "E_BROKER_NOT_FOUND", detail: `No JetStream stream captures subject "${target.subject}" (create one; Hookwarden does not)` };
  }
  if (name === "AuthorizationError" || name === "PermissionViolationError" || name === "UserAuthenticationExpiredError") {
    return { code: "E_BROKER_AUTH", detail: `The NATS server refused the credentials or the permission (${name})` };
  }
  if (name === "TimeoutError") return { code: "E_TIMEOUT", detail: "The NATS server did not acknowledge the message in time" };
  return undefined;
}

/**
 * NATS JetStream: a publish acknowledged by the stream (`PubAck`), with the Standard Webhooks
 * headers as NATS headers and `Nats-Msg-Id` set to `webhook-id`, so a retried delivery inside the
 * stream's duplicate window is stored once. Cluster gossip is ignored: the client only ever
 * connects to the address the SSRF policy vetted.
 */
export class NatsDestination implements DestinationKind {
  readonly name = "nats";
  readonly schemes = ["nats:"] as const;
  readonly #policy: BrokerKindOptions["policy"];
  readonly #connectTimeoutMs: number;
  readonly #clientName: string;
  readonly #pool = new ConnectionPool<NatsLink>(async (l) => {
    await l.nc.close().catch(() => undefined);
  });

  constructor(opts: BrokerKindOptions) {
    this.#policy = opts.policy;
    this.#connectTimeoutMs = opts.connectTimeoutMs;
    this.#clientName = opts.clientName ?? "hookwarden";
  }

  deliver(req: DestinationRequest): Promise<DestinationOutcome> {
    let target: NatsTarget | undefined;
    return settle(
      req,
      async () => {
        target = parseNatsUrl(new URL(req.url));
        return this.#publish(req, target);
      },
      (err) => (target ? classify(err, target) : undefined),
    );
  }

  async #publish(req: DestinationRequest, target: NatsTarget): Promise<string> {
    const ip = await vetHost(this.#policy, target.host);
    const key = poolKey(["nats", ip, target.port], req.credentials);
    const open = (drop: () => void) => this.#open(ip, target.port, req.credentials, drop);
    let link = await this.#pool.get(key, open);
    if (link.nc.isClosed()) {
      link.drop();
      link = await this.#pool.get(key, open);
    }
    const h = headers();
    for (const [k, v] of Object.entries(req.headers)) h.set(k, v);
    const ack = await link.js.publish(target.subject, req.body, {
      msgID: req.id,
      headers: h,
      timeout: req.timeoutMs,
      ...(target.stream !== undefined ? { expect: { streamName: target.stream } } : {}),
    });
    return `Stored by stream "${ack.stream}" at sequence ${ack.seq}${ack.duplicate ? " (duplicate of an earlier attempt: stored once)" : ""}`;
  }

  async #open(ip: string, port: number, credentials: BrokerCredentials | undefined, drop: () => void): Promise<NatsLink> {
    const nc = await connect({
      servers: [ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`],
      // A dropped connection is reopened by the next delivery (through the SSRF check again).
      reconnect: false,
      ignoreClusterUpdates: true,
      timeout: this.#connectTimeoutMs,
      name: this.#clientName,
      ...(credentials?.token !== undefined ? { token: credentials.token } : {}),
      ...(credentials?.username !== undefined ? { user: credentials.username, pass: credentials.password ?? "" } : {}),
    });
    void nc.closed().then(drop, drop);
    return { nc, js: jetstream(nc), drop };
  }

  close(): Promise<void> {
    return this.#pool.closeAll();
  }
}
