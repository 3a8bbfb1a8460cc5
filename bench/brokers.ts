/**
 * The `brokers` phase of `npm run bench`: messages published through the API and confirmed by
 * RabbitMQ (confirm channel), NATS JetStream (PubAck) and Redis Streams (XADD), on this machine's
 * brokers (loopback). Figure: messages confirmed per second, from the first publish until the
 * broker holds them all.
 *
 * Baseline, measured in the same run just before each gateway run: the same library publishing
 * the same bodies straight to the same broker, with the same confirmation and concurrency.
 */
import { randomBytes } from "node:crypto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect as natsConnect } from "@nats-io/transport-node";
import amqp from "amqplib";
import { Redis } from "ioredis";
import type { GatewayClient } from "../test/helpers/gateway-client.js";
import { withGateway } from "./gateway.js";
import { CONCURRENCY, QUICK, emit, eventPayload, log, withCleanup, type Dialect } from "./common.js";
import { benchNow, closedLoop, round } from "./load.js";

const MESSAGES = QUICK ? 500 : 3_000;
/** Give up on a run that has not seen every message at the broker by then. */
const DEADLINE_MS = 120_000;

/** One broker: publish straight to it, count what it holds, and the endpoint URL that targets it. */
interface BrokerTarget {
  kind: string;
  url: string;
  publishRaw: (body: string, i: number) => Promise<void>;
  count: () => Promise<number>;
  reset: () => Promise<void>;
  close: () => Promise<void>;
}

async function amqpTarget(): Promise<BrokerTarget> {
  const queue = `hwbench.${randomBytes(4).toString("hex")}`;
  const conn = await amqp.connect("amqp://guest:guest@127.0.0.1:5672");
  const ch = await conn.createConfirmChannel();
  await ch.assertQueue(queue, { durable: false, autoDelete: false });
  return {
    kind: "amqp",
    url: `amqp://127.0.0.1:5672/?queue=${queue}`,
    publishRaw: (body, i) =>
      new Promise((resolve, reject) =>
        ch.publish("", queue, Buffer.from(body), { mandatory: true, persistent: true, messageId: `raw_${i}`, contentType: "application/json" }, (err: unknown) => (err ? reject(err) : resolve())),
      ),
    count: async () => (await ch.checkQueue(queue)).messageCount,
    reset: async () => void (await ch.purgeQueue(queue)),
    close: async () => {
      await ch.deleteQueue(queue);
      await conn.close();
    },
  };
}

async function natsTarget(): Promise<BrokerTarget> {
  const stream = `HWBENCH_${randomBytes(4).toString("hex")}`;
  const subject = `hwbench.${stream}`;
  const nc = await natsConnect({ servers: "127.0.0.1:4222" });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: stream, subjects: [subject] });
  const js = jetstream(nc);
  return {
    kind: "nats",
    url: `nats://127.0.0.1:4222?subject=${subject}&stream=${stream}`,
    publishRaw: async (body, i) => void (await js.publish(subject, body, { msgID: `raw_${i}`, expect: { streamName: stream } })),
    count: async () => (await jsm.streams.info(stream)).state.messages,
    reset: async () => void (await jsm.streams.purge(stream)),
    close: async () => {
      await jsm.streams.delete(stream);
      await nc.close();
    },
  };
}

async function redisTarget(): Promise<BrokerTarget> {
  const key = `hwbench:${randomBytes(4).toString("hex")}`;
  const redis = new Redis("redis://127.0.0.1:6379");
  return {
    kind: "redis-stream",
    url: `redis://127.0.0.1:6379/0?stream=${encodeURIComponent(key)}`,
    publishRaw: async (body, i) => void (await redis.xadd(key, "*", "webhook-id", `raw_${i}`, "content-type", "application/json", "body", body)),
    count: () => redis.xlen(key),
    reset: async () => void (await redis.del(key)),
    close: async () => {
      await redis.del(key);
      redis.disconnect();
    },
  };
}

async function until(done: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error("the broker did not receive every message in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function measure(dialect: Dialect, target: BrokerTarget, publishBody: (i: number) => string): Promise<void> {
  const body = (i: number) => JSON.stringify(eventPayload(i));
  log(`brokers/${target.kind}: raw baseline, ${MESSAGES} confirmed publishes at concurrency ${CONCURRENCY}`);
  const r0 = benchNow();
  await closedLoop(MESSAGES, CONCURRENCY, (i) => target.publishRaw(body(i), i));
  const raw = (MESSAGES / (benchNow() - r0)) * 1000;
  await target.reset();
  await withGateway(dialect, `brokers-${target.kind}`, async (_gw, client: GatewayClient) => {
    const app = await client.createApp(`bench-${target.kind}`);
    await client.createEndpoint(app.id, target.url);
    log(`brokers/${target.kind}/${dialect}: publishing ${MESSAGES} messages through the gateway`);
    const t0 = benchNow();
    await closedLoop(MESSAGES, CONCURRENCY, async (i) => {
      const r = await client.publish(app.id, publishBody(i));
      if (r.status !== 202) throw new Error(`publish ${i} answered ${r.status}`);
    });
    await until(async () => (await target.count()) >= MESSAGES);
    const rate = (MESSAGES / (benchNow() - t0)) * 1000;
    emit({
      bench: "broker_delivered",
      kind: target.kind,
      dialect,
      value: Math.round(rate),
      unit: "msg/s",
      raw_msg_s: Math.round(raw),
      ratio_to_raw: round(rate / raw, 3),
      messages: MESSAGES,
      concurrency: CONCURRENCY,
      measured_from: "first publish to the broker holding every message (confirmed)",
    });
  });
}

/** Every broker kind on `dialect`; each target is created for the run and removed after it. */
export async function brokers(dialect: Dialect, publishBody: (i: number) => string): Promise<void> {
  for (const open of [amqpTarget, natsTarget, redisTarget]) {
    const target = await open();
    await withCleanup(target.close, () => measure(dialect, target, publishBody));
  }
}
