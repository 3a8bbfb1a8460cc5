import { randomBytes } from "node:crypto";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import amqp, { type Channel, type ChannelModel } from "amqplib";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AddressPolicy } from "../net/ssrf.js";
import { AmqpDestination } from "./amqp/index.js";
import type { DestinationRequest } from "./kind.js";
import { NatsDestination } from "./nats/index.js";
import { RedisStreamDestination } from "./redis-stream/index.js";

/**
 * The kinds on their own, against this machine's real brokers: connection reuse, reconnection
 * after the broker drops a connection, shutdown, and per-message confirmation under concurrency.
 */
const tag = () => randomBytes(5).toString("hex");
const opts = () => ({ policy: new AddressPolicy(["127.0.0.0/8"]), connectTimeoutMs: 5_000, clientName: `hwt-${tag()}` });

function request(url: string, id: string, body = `{"n":1}`): DestinationRequest {
  return {
    url,
    id,
    timestamp: Math.floor(Date.now() / 1000),
    eventType: "t.e",
    contentType: "application/json",
    headers: { "webhook-id": id, "webhook-timestamp": "1", "webhook-signature": "v1,x", "content-type": "application/json" },
    body,
    credentials: undefined,
    timeoutMs: 10_000,
  };
}

describe("Redis Streams kind: pooled connections", () => {
  let redis: Redis;
  const keys: string[] = [];
  beforeAll(() => {
    redis = new Redis("redis://127.0.0.1:6379");
  });
  afterAll(async () => {
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  /** Ids of the server-side connections that carry `name`. */
  async function clients(name: string): Promise<string[]> {
    const list = String(await redis.client("LIST"));
    return list
      .split("\n")
      .filter((l) => l.includes(` name=${name} `))
      .map((l) => /\bid=(\d+)/.exec(l)![1]!);
  }

  it("shares one connection, reopens it after the broker drops it, and closes it at shutdown", async () => {
    const o = opts();
    const kind = new RedisStreamDestination(o);
    const key = `hwt:${tag()}`;
    keys.push(key);
    const url = `redis://127.0.0.1:6379?stream=${key}`;
    const first = await Promise.all([1, 2, 3, 4, 5].map((i) => kind.deliver(request(url, `msg_${i}`))));
    expect(first.map((r) => r.errorCode)).toEqual([null, null, null, null, null]);
    const before = await clients(o.clientName);
    expect(before).toHaveLength(1);

    await redis.client("KILL", "ID", before[0]!);
    // The next delivery either finds the connection already dropped or fails on it once.
    let r = await kind.deliver(request(url, "msg_6"));
    if (!r.ok) {
      expect(r.errorCode).toBe("E_CONNECT");
      r = await kind.deliver(request(url, "msg_6"));
    }
    expect(r.ok).toBe(true);
    const after = await clients(o.clientName);
    expect(after).toHaveLength(1);
    expect(after[0]).not.toBe(before[0]);
    expect(await redis.xlen(key)).toBe(6);

    await kind.close();
    for (let i = 0; i < 50 && (await clients(o.clientName)).length > 0; i++) await new Promise((res) => setTimeout(res, 20));
    expect(await clients(o.clientName)).toEqual([]);
    const late = await kind.deliver(request(url, "msg_7"));
    expect(late.ok).toBe(false);
    expect(await redis.xlen(key)).toBe(6);
  });
});

describe("AMQP kind: confirmation per message on a shared channel", () => {
  let conn: ChannelModel;
  let ch: Channel;
  let queue: string;
  beforeAll(async () => {
    conn = await amqp.connect("amqp://guest:guest@127.0.0.1:5672");
    ch = await conn.createChannel();
    queue = `hwt.${tag()}`;
    await ch.assertQueue(queue, { durable: false });
    await ch.bindQueue(queue, "amq.direct", queue);
  });
  afterAll(async () => {
    await ch.deleteQueue(queue);
    await conn.close();
  });

  it("tells routed from returned messages published concurrently, even with equal message ids", async () => {
    const kind = new AmqpDestination(opts());
    try {
      const routed = `amqp://127.0.0.1:5672/?exchange=amq.direct&routingKey=${queue}`;
      const unrouted = `amqp://127.0.0.1:5672/?exchange=amq.direct&routingKey=nobody.${tag()}`;
      const jobs = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? routed : unrouted));
      const results = await Promise.all(jobs.map((url, i) => kind.deliver(request(url, `msg_${Math.floor(i / 2)}`))));
      expect(results.map((r) => r.errorCode)).toEqual(jobs.map((url) => (url === routed ? null : "E_BROKER_UNROUTABLE")));
      expect((await ch.checkQueue(queue)).messageCount).toBe(20);
    } finally {
      await kind.close();
    }
  });
});

describe("NATS kind: JetStream deduplication", () => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const stream = `HWT_${tag()}`;
  const subject = `hwt.${tag()}`;
  beforeAll(async () => {
    nc = await natsConnect({ servers: "127.0.0.1:4222" });
    jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: [subject] });
  });
  afterAll(async () => {
    await jsm.streams.delete(stream);
    await nc.close();
  });

  it("stores a retried message (same webhook-id) once", async () => {
    const kind = new NatsDestination(opts());
    try {
      const url = `nats://127.0.0.1:4222?subject=${subject}&stream=${stream}`;
      const a = await kind.deliver(request(url, "msg_same"));
      const b = await kind.deliver(request(url, "msg_same"));
      expect([a.ok, b.ok]).toEqual([true, true]);
      expect(b.response).toContain("duplicate");
      expect((await jsm.streams.info(stream)).state.messages).toBe(1);
    } finally {
      await kind.close();
    }
  });
});

describe("every kind against a server that accepts and never answers", () => {
  let server: Server;
  let port: number;
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    server = createServer((s) => {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it("fails the attempt with E_TIMEOUT at its timeout, and shuts down without hanging", async () => {
    const o = { ...opts(), connectTimeoutMs: 1_000 };
    const kinds = [
      { kind: new AmqpDestination(o), url: `amqp://127.0.0.1:${port}/?queue=q` },
      { kind: new NatsDestination(o), url: `nats://127.0.0.1:${port}?subject=a.b` },
      { kind: new RedisStreamDestination(o), url: `redis://127.0.0.1:${port}?stream=s` },
    ];
    const results = await Promise.all(kinds.map(({ kind, url }) => kind.deliver({ ...request(url, "msg_silent"), timeoutMs: 300 })));
    expect(results.map((r) => [r.ok, r.errorCode])).toEqual([
      [false, "E_TIMEOUT"],
      [false, "E_TIMEOUT"],
      [false, "E_TIMEOUT"],
    ]);
    await Promise.all(kinds.map(({ kind }) => kind.close()));
  });
});
