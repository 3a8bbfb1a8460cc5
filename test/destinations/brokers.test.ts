import { randomBytes } from "node:crypto";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import amqp, { type Channel, type ChannelModel } from "amqplib";
import { Redis } from "ioredis";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { DIALECTS } from "../helpers/dialects.js";
import { attemptsOf, closedPort, createApp, createEndpoint, pendingJobs, publish } from "../helpers/delivery.js";
import { putSecret } from "../helpers/integrations.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * Broker destinations against the real RabbitMQ, NATS (JetStream) and Redis of this machine
 * (`.ci/run` starts them): a message published through the API is consumed with each broker's own
 * client and its signature verified with the official Standard Webhooks library.
 */
const AMQP = "127.0.0.1:5672";
const NATS = "127.0.0.1:4222";
const REDIS = "127.0.0.1:6379";

const tag = () => randomBytes(5).toString("hex");

/** What a consumer hands to `standardwebhooks`: the three headers, as strings. */
function swHeaders(h: Record<string, unknown>): Record<string, string> {
  return { "webhook-id": String(h["webhook-id"]), "webhook-timestamp": String(h["webhook-timestamp"]), "webhook-signature": String(h["webhook-signature"]) };
}

for (const dialect of DIALECTS) {
  describe(`broker destinations (${dialect})`, () => {
    let t: TestServer;
    let strict: TestServer;
    let clock: FakeClock;
    let rabbit: ChannelModel;
    let ch: Channel;
    let nc: NatsConnection;
    let jsm: JetStreamManager;
    let redis: Redis;
    const streams: string[] = [];
    const keys: string[] = [];

    beforeAll(async () => {
      // Real time (verification checks the timestamp against the clock), moved by hand for retries.
      clock = new FakeClock(Date.now());
      t = await startTestServer(dialect, { retrySchedule: [1_000, 1_000] }, { clock, random: () => 0.5 });
      strict = await startTestServer(dialect, { allowPrivateNetworks: [], retrySchedule: [] });
      rabbit = await amqp.connect(`amqp://guest:guest@${AMQP}`);
      ch = await rabbit.createChannel();
      nc = await natsConnect({ servers: NATS });
      jsm = await jetstreamManager(nc);
      redis = new Redis(`redis://${REDIS}`);
    });
    afterAll(async () => {
      await t?.stop();
      await strict?.stop();
      for (const s of streams) await jsm?.streams.delete(s).catch(() => undefined);
      if (keys.length > 0) await redis?.del(...keys);
      await rabbit?.close();
      await nc?.close();
      redis?.disconnect();
    });

    /** Publishes one message to a new endpoint at `url` and runs the worker until it is recorded. */
    async function deliverTo(url: string, extra: Record<string, unknown> = {}) {
      const appId = await createApp(t, "brokers");
      const auth = extra.auth as { passwordSecret?: string; tokenSecret?: string } | undefined;
      const secretName = auth?.passwordSecret ?? auth?.tokenSecret;
      if (extra.password !== undefined && secretName) await putSecret(t.api, appId, secretName, String(extra.password));
      const { password: _p, tokenSecret: _t, ...body } = extra;
      const ep = await createEndpoint(t, appId, { url, ...body });
      const msg = await publish(t, appId, { eventType: "invoice.paid", payload: { amount: 42, note: "café ✓" } });
      await t.hw.worker.runUntilIdle();
      return { appId, ep, msg, attempts: await attemptsOf(t, appId, msg.id) };
    }

    it("RabbitMQ: publishes to a queue with the broker's confirm, signed, with vault credentials", async () => {
      const queue = `hwt.${tag()}`;
      await ch.assertQueue(queue, { autoDelete: false, durable: false });
      try {
        const { appId, ep, msg, attempts } = await deliverTo(`amqp://${AMQP}/?queue=${queue}`, { auth: { type: "basic", username: "guest", passwordSecret: "RABBIT_PASSWORD" }, password: "guest" });
        expect(attempts.map((a) => [a.status, a.errorCode])).toEqual([[0, null]]);
        expect(attempts[0]!.response).toContain("Confirmed by the broker");
        const got = await ch.get(queue, { noAck: true });
        expect(got).not.toBe(false);
        if (got === false) return;
        const h = got.properties.headers as Record<string, unknown>;
        const body = got.content.toString("utf8");
        expect(new StandardWebhook(ep.secret).verify(body, swHeaders(h))).toEqual({ amount: 42, note: "café ✓" });
        expect(h["webhook-id"]).toBe(msg.id);
        expect(h["webhook-event-type"]).toBe("invoice.paid");
        expect(h).not.toHaveProperty("authorization");
        expect(got.properties).toMatchObject({ messageId: msg.id, type: "invoice.paid", contentType: "application/json", deliveryMode: 2 });
        expect(await pendingJobs(t)).toBe(0);
        // The preview shows the message as the broker gets it: signed, without the connection's credentials.
        const preview = await t.api("POST", `/api/v1/app/${appId}/endpoint/${ep.id}/preview`, { eventType: "invoice.paid", payload: {} });
        expect(preview.status, preview.text).toBe(200);
        expect(preview.body.headers).toHaveProperty("webhook-signature");
        expect(preview.body.headers).not.toHaveProperty("authorization");
      } finally {
        await ch.deleteQueue(queue);
      }
    });

    it("RabbitMQ: publishes to an exchange with a routing key", async () => {
      const exchange = `hwt.x.${tag()}`;
      const queue = `hwt.${tag()}`;
      await ch.assertExchange(exchange, "direct", { autoDelete: false, durable: false });
      await ch.assertQueue(queue, { durable: false });
      await ch.bindQueue(queue, exchange, "invoices");
      try {
        const { ep, attempts } = await deliverTo(`amqp://${AMQP}/?exchange=${exchange}&routingKey=invoices`);
        expect(attempts.map((a) => [a.status, a.errorCode])).toEqual([[0, null]]);
        const got = await ch.get(queue, { noAck: true });
        if (got === false) throw new Error("nothing routed to the bound queue");
        expect(new StandardWebhook(ep.secret).verify(got.content.toString("utf8"), swHeaders(got.properties.headers as Record<string, unknown>))).toBeTruthy();
      } finally {
        await ch.deleteQueue(queue);
        await ch.deleteExchange(exchange);
      }
    });

    it("RabbitMQ: an unroutable message (mandatory, returned) is a failed attempt that will be retried", async () => {
      const seen: { endpointId: string; outcome: string; errorCode: string | null; willRetry: boolean }[] = [];
      const off = t.hw.ctx.events.on("delivery:attempted", (e) => seen.push({ endpointId: e.endpointId, outcome: e.outcome, errorCode: e.errorCode, willRetry: e.willRetry }));
      const { appId, ep, attempts } = await deliverTo(`amqp://${AMQP}/?exchange=amq.direct&routingKey=nobody.${tag()}`).finally(off);
      expect(attempts.map((a) => [a.status, a.errorCode])).toEqual([[2, "E_BROKER_UNROUTABLE"]]);
      // The same lifecycle event (and so the same metrics) as an HTTP attempt.
      expect(seen).toEqual([{ endpointId: ep.id, outcome: "failure", errorCode: "E_BROKER_UNROUTABLE", willRetry: true }]);
      expect(await pendingJobs(t)).toBe(1);
      // The breaker counts it like an HTTP failure.
      const row = await t.hw.ctx.store.db.selectFrom("endpoints").select("consecutive_failures").where("id", "=", ep.id).executeTakeFirstOrThrow();
      expect(Number(row.consecutive_failures)).toBe(1);
      expect((await t.api("DELETE", `/api/v1/app/${appId}/endpoint/${ep.id}`)).status).toBe(204);
      expect(await pendingJobs(t)).toBe(0);
    });

    it("RabbitMQ: a missing exchange and a wrong password fail with stable codes, no secret in the record", async () => {
      const missing = await deliverTo(`amqp://${AMQP}/?exchange=hwt.none.${tag()}`);
      expect(missing.attempts.map((a) => [a.status, a.errorCode])).toEqual([[2, "E_BROKER_NOT_FOUND"]]);
      const password = `wrong-${tag()}`;
      const denied = await deliverTo(`amqp://${AMQP}/?queue=any`, { auth: { type: "basic", username: "guest", passwordSecret: "RABBIT_PASSWORD" }, password });
      expect(denied.attempts.map((a) => [a.status, a.errorCode])).toEqual([[2, "E_BROKER_AUTH"]]);
      expect(JSON.stringify(denied.attempts)).not.toContain(password);
      expect(t.logs()).not.toContain(password);
      await t.hw.ctx.store.db.deleteFrom("jobs").execute();
    });

    it("NATS JetStream: publishes with ack into the expected stream, Nats-Msg-Id = webhook-id", async () => {
      const stream = `HWT_${tag()}`;
      const subject = `hwt.${tag()}.invoices`;
      await jsm.streams.add({ name: stream, subjects: [subject] });
      streams.push(stream);
      const { ep, msg, attempts } = await deliverTo(`nats://${NATS}?subject=${subject}&stream=${stream}`);
      expect(attempts.map((a) => [a.status, a.errorCode])).toEqual([[0, null]]);
      expect(attempts[0]!.response).toContain(`Stored by stream "${stream}"`);
      const stored = await jsm.streams.getMessage(stream, { last_by_subj: subject });
      if (!stored) throw new Error("nothing stored");
      const h: Record<string, string> = {};
      for (const [k, v] of stored.header) h[k.toLowerCase()] = v[0]!;
      expect(new StandardWebhook(ep.secret).verify(stored.string(), swHeaders(h))).toEqual({ amount: 42, note: "café ✓" });
      expect(h["nats-msg-id"]).toBe(msg.id);
      expect(h["webhook-event-type"]).toBe("invoice.paid");
    });

    it("NATS JetStream: no stream for the subject, or another stream than expected, is E_BROKER_NOT_FOUND", async () => {
      const none = await deliverTo(`nats://${NATS}?subject=hwt.nostream.${tag()}`);
      expect(none.attempts.map((a) => [a.status, a.errorCode])).toEqual([[2, "E_BROKER_NOT_FOUND"]]);
      const stream = `HWT_${tag()}`;
      const subject = `hwt.${tag()}.x`;
      await jsm.streams.add({ name: stream, subjects: [subject] });
      streams.push(stream);
      const other = await deliverTo(`nats://${NATS}?subject=${subject}&stream=HWT_OTHER_${tag()}`);
      expect(other.attempts.map((a) => [a.status, a.errorCode])).toEqual([[2, "E_BROKER_NOT_FOUND"]]);
      await t.hw.ctx.store.db.deleteFrom("jobs").execute();
    });

    it("Redis Streams: XADD with the Standard Webhooks headers as fields, trimmed by maxlen", async () => {
      const key = `hwt:${tag()}`;
      keys.push(key);
      const { ep, msg, attempts } = await deliverTo(`redis://${REDIS}/0?stream=${encodeURIComponent(key)}&maxlen=1000`);
      expect(attempts.map((a) => [a.status, a.errorCode])).toEqual([[0, null]]);
      const entries = await redis.xrange(key, "-", "+");
      expect(entries).toHaveLength(1);
      const flat = entries[0]![1];
      const fields: Record<string, string> = {};
      for (let i = 0; i < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
      expect(attempts[0]!.response).toBe(`Added to stream as entry ${entries[0]![0]}`);
      expect(new StandardWebhook(ep.secret).verify(fields.body!, swHeaders(fields))).toEqual({ amount: 42, note: "café ✓" });
      expect(fields).toMatchObject({ "webhook-id": msg.id, "content-type": "application/json", "webhook-event-type": "invoice.paid" });
    });

    it("Redis Streams: a key of another type is E_BROKER_REJECTED; unknown credentials E_BROKER_AUTH", async () => {
      const key = `hwt:${tag()}`;
      keys.push(key);
      await redis.set(key, "not a stream");
      const wrong = await deliverTo(`redis://${REDIS}?stream=${encodeURIComponent(key)}`);
      expect(wrong.attempts.map((a) => [a.status, a.errorCode])).toEqual([[2, "E_BROKER_REJECTED"]]);
      expect(await redis.get(key)).toBe("not a stream");
      const password = `nope-${tag()}`;
      const denied = await deliverTo(`redis://${REDIS}?stream=hwt:x`, { auth: { type: "basic", username: `nobody${tag()}`, passwordSecret: "REDIS_PASSWORD" }, password });
      expect(denied.attempts.map((a) => [a.status, a.errorCode])).toEqual([[2, "E_BROKER_AUTH"]]);
      expect(JSON.stringify(denied.attempts)).not.toContain(password);
      // A bearer token is sent as the password (`AUTH token`); this server has none, which ioredis
      // tolerates, so the delivery goes through: the token still appears nowhere.
      const token = `tok-${tag()}`;
      const key2 = `hwt:${tag()}`;
      keys.push(key2);
      const bearer = await deliverTo(`redis://${REDIS}?stream=${encodeURIComponent(key2)}`, { auth: { type: "bearer", tokenSecret: "REDIS_TOKEN" }, password: token, tokenSecret: undefined });
      expect(bearer.attempts.map((a) => [a.status, a.errorCode])).toEqual([[0, null]]);
      expect(JSON.stringify(await redis.xrange(key2, "-", "+"))).not.toContain(token);
      expect(JSON.stringify(bearer.attempts)).not.toContain(token);
      expect(t.logs()).not.toContain(token);
      await t.hw.ctx.store.db.deleteFrom("jobs").execute();
    });

    it("an unreachable broker is E_CONNECT and retried on the shared schedule (then delivered)", async () => {
      for (const scheme of ["amqp", "nats"] as const) {
        const port = await closedPort();
        const url = scheme === "amqp" ? `amqp://127.0.0.1:${port}/?queue=q` : `nats://127.0.0.1:${port}?subject=a.b`;
        const r = await deliverTo(url);
        expect({ scheme, codes: r.attempts.map((a) => [a.status, a.errorCode]) }).toEqual({ scheme, codes: [[2, "E_CONNECT"]] });
      }
      await t.hw.ctx.store.db.deleteFrom("jobs").execute();
      const key = `hwt:${tag()}`;
      keys.push(key);
      const port = await closedPort();
      const { appId, ep, msg, attempts } = await deliverTo(`redis://127.0.0.1:${port}?stream=${encodeURIComponent(key)}`);
      expect(attempts.map((a) => [a.status, a.errorCode])).toEqual([[2, "E_CONNECT"]]);
      expect(await pendingJobs(t)).toBe(1);
      // The operator fixes the URL; the retry (same job, same schedule) reaches the broker.
      const fixed = await t.api("PATCH", `/api/v1/app/${appId}/endpoint/${ep.id}`, { url: `redis://${REDIS}?stream=${encodeURIComponent(key)}` });
      expect(fixed.status, fixed.text).toBe(200);
      clock.advance(1_000);
      await t.hw.worker.runUntilIdle();
      expect((await attemptsOf(t, appId, msg.id)).map((a) => [a.status, a.errorCode])).toEqual([
        [2, "E_CONNECT"],
        [0, null],
      ]);
      expect(await redis.xlen(key)).toBe(1);
      expect(await pendingJobs(t)).toBe(0);
    });

    it("SSRF: a loopback broker is refused at save time (IP) and at connect time (name) unless allowed", async () => {
      const appId = await createApp(strict, "ssrf");
      for (const url of [`amqp://127.0.0.1/?queue=q`, `nats://[::1]:4222?subject=a`, `redis://169.254.169.254?stream=s`, `redis://2130706433?stream=s`]) {
        const res = await strict.api("POST", `/api/v1/app/${appId}/endpoint`, { url });
        expect({ url, status: res.status, code: res.body?.code }).toEqual({ url, status: 422, code: "E_SSRF_BLOCKED" });
      }
      const key = `hwt:${tag()}`;
      keys.push(key);
      for (const url of [`redis://localhost:6379?stream=${encodeURIComponent(key)}`, `amqp://localhost/?queue=q`, `nats://localhost?subject=a`]) {
        const ep = await createEndpoint(strict, appId, { url, filterTypes: [`t.${url.slice(0, 4)}`] });
        const msg = await publish(strict, appId, { eventType: `t.${url.slice(0, 4)}` });
        await strict.hw.worker.runUntilIdle();
        const attempts = await attemptsOf(strict, appId, msg.id);
        expect({ url, codes: attempts.map((a) => [a.status, a.errorCode, a.endpointId]) }).toEqual({ url, codes: [[2, "E_SSRF_BLOCKED", ep.id]] });
      }
      expect(await redis.exists(key)).toBe(0);
    });

    it("refuses hostile and malformed broker endpoints with 422, echoing no credential", async () => {
      const appId = await createApp(t, "hostile");
      const long = "s".repeat(2_000);
      const cases: [string, Record<string, unknown>][] = [
        [`amqp://guest:hunter2secret@${AMQP}/?queue=q`, {}],
        [`redis://:hunter2secret@${REDIS}?stream=s`, {}],
        [`nats://user:hunter2secret@${NATS}?subject=a`, {}],
        [`amqp://${AMQP}/?queue=q&routing_key=x`, {}],
        [`amqp://${AMQP}/?queue=a&queue=b`, {}],
        [`amqp://${AMQP}/?queue=a&exchange=b`, {}],
        [`amqp://${AMQP}/`, {}],
        [`amqp://${AMQP}/?queue=${"q".repeat(256)}`, {}],
        [`amqp://${AMQP}/a/b?queue=q`, {}],
        [`amqp://${AMQP}/?queue=bad%00name`, {}],
        [`nats://${NATS}?subject=a.*`, {}],
        [`nats://${NATS}?subject=a..b`, {}],
        [`nats://${NATS}?subject=a&stream=x.y`, {}],
        [`nats://${NATS}`, {}],
        [`redis://${REDIS}?stream=${long}`, {}],
        [`redis://${REDIS}?stream=a%0d%0aFLUSHALL`, {}],
        [`redis://${REDIS}/99999999?stream=s`, {}],
        [`redis://${REDIS}?stream=s&maxlen=-1`, {}],
        [`redis://${REDIS}?stream=s&maxlen=1e9`, {}],
        [`redis://${REDIS}?stream=s#frag`, {}],
        [`redis://ho%00st?stream=s`, {}],
        [`redis://${REDIS}?stream=s&__proto__=x`, {}],
        [`redis://${REDIS}?stream=s`, { template: { body: "{{payload}}" } }],
        [`amqp://${AMQP}/?queue=q`, { auth: { type: "bearer", tokenSecret: "TOKEN" } }],
        [`ftp://${REDIS}/x`, {}],
      ];
      for (const [url, extra] of cases) {
        const res = await t.api("POST", `/api/v1/app/${appId}/endpoint`, { url, ...extra });
        expect({ url, status: res.status, code: typeof res.body?.code }).toEqual({ url, status: 422, code: "string" });
        expect(res.text).not.toContain("hunter2secret");
      }
      expect(t.logs()).not.toContain("hunter2secret");
      expect((await t.api("GET", `/api/v1/app/${appId}/endpoint`)).body.data).toHaveLength(0);
      // An endpoint cannot be moved onto a URL with credentials either.
      const ep = await createEndpoint(t, appId, { url: `redis://${REDIS}?stream=ok` });
      const moved = await t.api("PATCH", `/api/v1/app/${appId}/endpoint/${ep.id}`, { url: `redis://:hunter2secret@${REDIS}?stream=ok` });
      expect(moved.status).toBe(422);
      expect(moved.text).not.toContain("hunter2secret");
      // Sync calls wait for an HTTP answer; a broker has none to give.
      const call = await t.api("POST", `/api/v1/app/${appId}/endpoint/${ep.id}/call`, { eventType: "t.call", payload: {} });
      expect({ status: call.status, code: call.body?.code }).toEqual({ status: 422, code: "E_VALIDATION" });
    });
  });
}
