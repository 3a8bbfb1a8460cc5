import { Redis } from "ioredis";
import type { ErrorCode } from "../../errors/index.js";
import { ConnectionPool, poolKey, vetHost, type BrokerKindOptions } from "../connection-pool.js";
import type { BrokerCredentials, DestinationKind, DestinationOutcome, DestinationRequest } from "../kind.js";
import { BrokerFailure, settle } from "../outcome.js";
import { parseRedisStreamUrl, type RedisStreamTarget } from "./url.js";

interface RedisLink {
  client: Redis;
  /** The socket error behind ioredis's generic "Connection is closed." */
  lastError: Error | undefined;
  /** Takes this connection out of the pool (ioredis says "end" only a while after a drop). */
  drop: () => void;
}

function classify(err: unknown): { code: ErrorCode; detail: string } | undefined {
  const message = String((err as Error)?.message ?? "");
  if (/^(WRONGPASS|NOAUTH|NOPERM)\b/.test(message)) return { code: "E_BROKER_AUTH", detail: `Redis refused the credentials or the permission (${message.split(" ")[0]})` };
  if (/^WRONGTYPE\b/.test(message)) return { code: "E_BROKER_REJECTED", detail: "The key exists and is not a stream (WRONGTYPE)" };
  if (/^[A-Z]+ /.test(message) && (err as Error).name === "ReplyError") return { code: "E_BROKER_REJECTED", detail: `Redis refused the command: ${message.slice(0, 300)}` };
  return undefined;
}

/**
 * Redis Streams: `XADD key [MAXLEN ~ N] * field value …`, confirmed by the entry id Redis returns.
 * Fields: the Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`),
 * `content-type`, `webhook-event-type`, the endpoint's custom headers, then `body`.
 */
export class RedisStreamDestination implements DestinationKind {
  readonly name = "redis-stream";
  readonly schemes = ["redis:"] as const;
  readonly #policy: BrokerKindOptions["policy"];
  readonly #connectTimeoutMs: number;
  readonly #clientName: string;
  readonly #pool = new ConnectionPool<RedisLink>(async (l) => {
    await l.client.quit().catch(() => l.client.disconnect());
  });

  constructor(opts: BrokerKindOptions) {
    this.#policy = opts.policy;
    this.#connectTimeoutMs = opts.connectTimeoutMs;
    this.#clientName = opts.clientName ?? "hookwarden";
  }

  deliver(req: DestinationRequest): Promise<DestinationOutcome> {
    return settle(req, () => this.#publish(req), classify);
  }

  async #publish(req: DestinationRequest): Promise<string> {
    const target = parseRedisStreamUrl(new URL(req.url));
    const ip = await vetHost(this.#policy, target.host);
    const key = poolKey(["redis", ip, target.port, target.db], req.credentials);
    const open = (drop: () => void) => this.#open(ip, target, req.credentials, drop);
    let link = await this.#pool.get(key, open);
    if (link.client.status !== "ready") {
      link.drop();
      link.client.disconnect();
      link = await this.#pool.get(key, open);
    }
    const fields: string[] = [];
    for (const [k, v] of Object.entries(req.headers)) if (k !== "body") fields.push(k, v);
    fields.push("body", req.body);
    const trim: (string | number)[] = target.maxlen !== undefined ? ["MAXLEN", "~", target.maxlen] : [];
    try {
      const id = await link.client.xadd(target.stream, ...(trim as ["MAXLEN", "~", number]), "*", ...fields);
      return `Added to stream as entry ${String(id)}`;
    } catch (err) {
      if (/Connection is closed|Stream isn't writeable|Command timed out/.test(String((err as Error).message))) {
        // A server that stopped answering holds every later command behind this one: replace it.
        link.client.disconnect();
        link.drop();
        throw link.lastError ?? new BrokerFailure("E_CONNECT", "The connection to Redis was lost");
      }
      throw err;
    }
  }

  async #open(ip: string, target: RedisStreamTarget, credentials: BrokerCredentials | undefined, drop: () => void): Promise<RedisLink> {
    const client = new Redis({
      host: ip,
      port: target.port,
      db: target.db,
      ...(credentials?.username !== undefined ? { username: credentials.username, password: credentials.password ?? "" } : {}),
      ...(credentials?.token !== undefined ? { password: credentials.token } : {}),
      lazyConnect: true,
      connectTimeout: this.#connectTimeoutMs,
      commandTimeout: this.#connectTimeoutMs,
      // Fail now rather than queue: the engine's retry schedule decides when to try again, and a
      // dropped connection is reopened by the next delivery (through the SSRF check again).
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectionName: this.#clientName,
    });
    const link: RedisLink = { client, lastError: undefined, drop };
    client.on("error", (err: Error) => {
      link.lastError = err;
    });
    client.on("end", drop);
    // `connectTimeout` covers the TCP connect only; a server that accepts and never answers would
    // hold `connect()` (and this pool entry, and every later delivery) forever.
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        client.connect(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new BrokerFailure("E_TIMEOUT", "Redis did not complete the connection handshake in time")), this.#connectTimeoutMs);
        }),
      ]);
    } catch (err) {
      client.disconnect();
      throw err instanceof BrokerFailure ? err : (link.lastError ?? err);
    } finally {
      clearTimeout(timer);
    }
    return link;
  }

  close(): Promise<void> {
    return this.#pool.closeAll();
  }
}
