import amqp, { type ChannelModel, type ConfirmChannel } from "amqplib";
import type { ErrorCode } from "../../errors/index.js";
import { ConnectionPool, poolKey, vetHost, type BrokerKindOptions } from "../connection-pool.js";
import type { BrokerCredentials, DestinationKind, DestinationOutcome, DestinationRequest } from "../kind.js";
import { BrokerFailure, settle } from "../outcome.js";
import { parseAmqpUrl, type AmqpTarget } from "./url.js";

interface AmqpConnection {
  model: ChannelModel;
  channel: ConfirmChannel;
  /** Publishes the broker returned as unroutable and has not acknowledged yet, by publish key. */
  returned: Map<string, number>;
  /** Why the broker closed the channel or connection (a publish callback only says "closed"). */
  lastError: Error | undefined;
}

function publishKey(messageId: string, exchange: string, routingKey: string): string {
  return `${messageId}\u0000${exchange}\u0000${routingKey}`;
}

/** RabbitMQ's reply codes (AMQP 0-9-1 §1.2): 403 ACCESS_REFUSED, 404 NOT_FOUND, 530 NOT_ALLOWED. */
function classify(err: unknown): { code: ErrorCode; detail: string } | undefined {
  const message = String((err as Error)?.message ?? "");
  const brokerText = /with message "([^"]{0,300})/.exec(message)?.[1];
  if (/ACCESS[-_]REFUSED|\b403\b/.test(message)) return { code: "E_BROKER_AUTH", detail: `The broker refused the credentials or the permission${brokerText ? `: ${brokerText}` : ""}` };
  if (/NOT[-_]FOUND|\b404\b/.test(message)) return { code: "E_BROKER_NOT_FOUND", detail: brokerText ?? "The exchange or queue does not exist" };
  if (/Expected ConnectionOpenOk|NOT[-_]ALLOWED|\b530\b/.test(message)) return { code: "E_BROKER_NOT_FOUND", detail: "The broker refused to open the vhost (it does not exist or the user may not use it)" };
  if (/nack/i.test(message)) return { code: "E_BROKER_NACK", detail: "The broker did not accept the message (negative acknowledgement)" };
  return undefined;
}

/**
 * RabbitMQ and other AMQP 0-9-1 brokers. Publishes on a confirm channel with `mandatory`: a
 * delivery counts once the broker acknowledged it, and a message no queue would receive (the
 * broker returns it before acknowledging) is a failed attempt, `E_BROKER_UNROUTABLE`, rather than a
 * silently dropped webhook. Messages are persistent; the Standard Webhooks headers travel as AMQP
 * headers, and `messageId`, `timestamp`, `type` and `contentType` are set from them.
 */
export class AmqpDestination implements DestinationKind {
  readonly name = "amqp";
  readonly schemes = ["amqp:"] as const;
  readonly #policy: BrokerKindOptions["policy"];
  readonly #connectTimeoutMs: number;
  readonly #clientName: string;
  readonly #pool = new ConnectionPool<AmqpConnection>(async (c) => {
    await c.model.close().catch(() => undefined);
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
    const target = parseAmqpUrl(new URL(req.url));
    const ip = await vetHost(this.#policy, target.host);
    // One connection per exchange: a publish to a missing exchange closes its channel, which must
    // not fail deliveries to other exchanges of the same broker.
    const key = poolKey(["amqp", ip, target.port, target.vhost, target.exchange], req.credentials);
    const conn = await this.#pool.get(key, (drop) => this.#open(ip, target, req.credentials, drop));
    const pk = publishKey(req.id, target.exchange, target.routingKey);
    await new Promise<void>((resolve, reject) => {
      try {
        conn.channel.publish(
          target.exchange,
          target.routingKey,
          Buffer.from(req.body, "utf8"),
          {
            mandatory: true,
            persistent: true,
            contentType: req.contentType,
            messageId: req.id,
            timestamp: req.timestamp,
            type: req.eventType,
            headers: req.headers,
          },
          (err: unknown) => {
            if (err) return reject(conn.lastError ?? err);
            // RabbitMQ sends basic.return before the basic.ack of the same message.
            const n = conn.returned.get(pk) ?? 0;
            if (n > 0) {
              if (n === 1) conn.returned.delete(pk);
              else conn.returned.set(pk, n - 1);
              return reject(new BrokerFailure("E_BROKER_UNROUTABLE", `No queue is bound to exchange "${target.exchange}" for routing key "${target.routingKey}"; the broker returned the message`));
            }
            resolve();
          },
        );
      } catch (err) {
        reject(conn.lastError ?? err);
      }
    });
    return target.exchange === "" ? `Confirmed by the broker (queue "${target.routingKey}")` : `Confirmed by the broker (exchange "${target.exchange}", routing key "${target.routingKey}")`;
  }

  async #open(ip: string, target: AmqpTarget, credentials: BrokerCredentials | undefined, drop: () => void): Promise<AmqpConnection> {
    const model = await amqp.connect(
      {
        protocol: "amqp",
        hostname: ip,
        port: target.port,
        vhost: target.vhost,
        // Without vault credentials amqplib uses RabbitMQ's default guest/guest (loopback only).
        ...(credentials ? { username: credentials.username ?? "", password: credentials.password ?? "" } : {}),
        heartbeat: 30,
      },
      { timeout: this.#connectTimeoutMs, clientProperties: { connection_name: this.#clientName } },
    );
    const conn: AmqpConnection = { model, channel: undefined as unknown as ConfirmChannel, returned: new Map(), lastError: undefined };
    const lost = (err?: Error) => {
      if (err) conn.lastError ??= err;
      drop();
    };
    model.on("error", lost);
    model.on("close", lost);
    try {
      conn.channel = await model.createConfirmChannel();
    } catch (err) {
      await model.close().catch(() => undefined);
      throw err;
    }
    conn.channel.on("error", (err: Error) => {
      conn.lastError ??= err;
    });
    conn.channel.on("close", () => {
      drop();
      void model.close().catch(() => undefined);
    });
    conn.channel.on("return", (msg) => {
      const id = msg.properties.messageId as string | undefined;
      if (id === undefined) return;
      const pk = publishKey(id, msg.fields.exchange, msg.fields.routingKey);
      conn.returned.set(pk, (conn.returned.get(pk) ?? 0) + 1);
    });
    return conn;
  }

  close(): Promise<void> {
    return this.#pool.closeAll();
  }
}
