import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/index.js";
import { attemptsOf, createApp, createEndpoint, publish } from "../helpers/delivery.js";
import { DIALECTS } from "../helpers/dialects.js";
import { send, setup } from "../helpers/ingress.js";
import { OtlpReceiver } from "../helpers/otlp-receiver.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { AgentClient } from "../../src/agents/client.js";
import { createLogger } from "../../src/logger/index.js";
import { SecretValue } from "../../src/vault/secret-value.js";
import { agentBucket, createAgentToken } from "../helpers/agents.js";

const SERVER = 2;
const CLIENT = 3;
const PRODUCER = 4;
const STATUS_ERROR = 2;

function parseTraceparent(v: unknown): { traceId: string; parentId: string; flags: string } {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(String(v));
  if (!m) throw new Error(`not a W3C traceparent: ${String(v)}`);
  return { traceId: m[1]!, parentId: m[2]!, flags: m[3]! };
}

function newTraceparent(): { header: string; traceId: string; spanId: string } {
  const traceId = randomBytes(16).toString("hex");
  const spanId = randomBytes(8).toString("hex");
  return { header: `00-${traceId}-${spanId}-01`, traceId, spanId };
}

describe("tracing configuration", () => {
  it("is off unless an OTLP endpoint is given, honours the standard OTEL_* variables, and has an off switch", () => {
    expect(loadConfig({}, {}).otlpTracesUrl).toBeUndefined();
    expect(loadConfig({}, { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" }).otlpTracesUrl).toBe("http://collector:4318/v1/traces");
    expect(loadConfig({ otlpEndpoint: "http://flag:4318" }, { OTEL_EXPORTER_OTLP_ENDPOINT: "http://env:4318" }).otlpTracesUrl).toBe("http://flag:4318/v1/traces");
    expect(loadConfig({}, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c:4318/custom", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" }).otlpTracesUrl).toBe("http://c:4318/custom");
    expect(loadConfig({}, { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_SDK_DISABLED: "true" }).otlpTracesUrl).toBeUndefined();
    expect(loadConfig({}, { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_TRACES_EXPORTER: "none" }).otlpTracesUrl).toBeUndefined();
    expect(loadConfig({}, { OTEL_SERVICE_NAME: "gw-eu" }).otelServiceName).toBe("gw-eu");
    // Hostile values are refused at start, with the setting named.
    expect(() => loadConfig({}, { OTEL_EXPORTER_OTLP_ENDPOINT: "file:///etc/passwd" })).toThrow(/otlpEndpoint/);
    expect(() => loadConfig({ otlpEndpoint: "not a url" }, {})).toThrow(/otlpEndpoint/);
    expect(() => loadConfig({ otlpExportDelay: "0s" }, {})).toThrow(/otlpExportDelay/);
  });
});

for (const dialect of DIALECTS) {
  describe(`OpenTelemetry traces over OTLP/HTTP (${dialect})`, () => {
    let t: TestServer;
    let collector: OtlpReceiver;
    let receiver: Receiver;
    let appId: string;

    beforeAll(async () => {
      collector = await new OtlpReceiver().start();
      receiver = await new Receiver().start();
      t = await startTestServer(dialect, { otlpEndpoint: collector.url, otlpExportDelay: "50ms", otelServiceName: "hookwarden-test", retrySchedule: "1ms", pollInterval: "100ms" });
      appId = await createApp(t, "traced");
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
      await collector?.stop();
    });

    const spanOf = (name: string, attr: string, value: string) => collector.span((s) => s.name === name && s.attributes[attr] === value);
    /** The request the receiver got on `path` (waits for it; the bound turns a hang into a failure). */
    const arrived = async (path: string) => {
      for (let i = 0; i < 1000; i++) {
        const hit = receiver.received.find((r) => r.url === path);
        if (hit) return hit;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`nothing arrived on ${path}`);
    };

    it("publish → attempt: the caller's traceparent is the parent, the attempt is the publish span's child, and the receiver joins the trace", async () => {
      const path = `/hooks/${randomBytes(4).toString("hex")}`;
      const ep = await createEndpoint(t, appId, { url: receiver.url + path });
      const caller = newTraceparent();
      const secret = `canary-${randomBytes(8).toString("hex")}`;
      const msg = await publish(t, appId, { payload: { secret } }, { traceparent: caller.header, "idempotency-key": `idem-${secret}` });
      const sent = parseTraceparent((await arrived(path)).headers.traceparent);

      const pub = await spanOf("hookwarden.publish", "hookwarden.message.id", msg.id);
      expect(pub.traceId).toBe(caller.traceId);
      expect(pub.parentSpanId).toBe(caller.spanId);
      expect(pub.kind).toBe(SERVER);
      expect(pub.attributes["http.response.status_code"]).toBe(202);
      expect(pub.attributes["hookwarden.app.id"]).toBe(appId);
      expect(pub.resource["service.name"]).toBe("hookwarden-test");

      const att = await spanOf("hookwarden.attempt", "hookwarden.message.id", msg.id);
      const [recorded] = await attemptsOf(t, appId, msg.id);
      expect(att.traceId).toBe(caller.traceId);
      expect(att.parentSpanId).toBe(pub.spanId);
      expect(att.kind).toBe(CLIENT);
      expect(att.attributes["hookwarden.endpoint.id"]).toBe(ep.id);
      expect(att.attributes["hookwarden.attempt.id"]).toBe(recorded!.id);
      expect(att.attributes["http.response.status_code"]).toBe(200);
      expect(att.statusCode).not.toBe(STATUS_ERROR);

      // The destination's request is a child of the attempt span, in the caller's trace.
      expect(sent.traceId).toBe(caller.traceId);
      expect(sent.parentId).toBe(att.spanId);
      expect(sent.flags).toBe("01");

      // Nothing secret or private was exported: no payload, no API token, no idempotency key.
      const exported = collector.raw.join("\n");
      expect(exported).not.toContain(secret);
      expect(exported).not.toContain(t.token);
    });

    it("a failed attempt is an error span, and its retry (claimed from the queue, the message re-read) is a second child of the same publish span", async () => {
      const path = `/flaky/${randomBytes(4).toString("hex")}`;
      let calls = 0;
      receiver.respond = (r) => (r.url === path && ++calls === 1 ? { status: 500, body: "boom" } : undefined);
      const ep = await createEndpoint(t, appId, { url: receiver.url + path });
      const msg = await publish(t, appId, { eventType: "flaky.event" });
      const attemptSpan = (n: number) => collector.span((s) => s.name === "hookwarden.attempt" && s.attributes["hookwarden.message.id"] === msg.id && s.attributes["hookwarden.endpoint.id"] === ep.id && s.attributes["hookwarden.attempt.number"] === n);
      const first = await attemptSpan(1);
      const second = await attemptSpan(2);
      const pub = await spanOf("hookwarden.publish", "hookwarden.message.id", msg.id);
      receiver.respond = () => undefined;

      expect(first.statusCode).toBe(STATUS_ERROR);
      expect(first.attributes["http.response.status_code"]).toBe(500);
      expect(first.attributes["error.type"]).toBe("E_HTTP_STATUS");
      expect(second.statusCode).not.toBe(STATUS_ERROR);
      expect(second.attributes["http.response.status_code"]).toBe(200);
      // No traceparent from the caller: the publish span starts the trace.
      expect(pub.parentSpanId).toBeUndefined();
      for (const s of [first, second]) {
        expect(s.traceId).toBe(pub.traceId);
        expect(s.parentSpanId).toBe(pub.spanId);
      }
      const seen = receiver.received.filter((r) => r.url === path).map((r) => parseTraceparent(r.headers.traceparent));
      expect(seen.map((s) => s.parentId)).toEqual([first.spanId, second.spanId]);
    });

    it("a hostile or malformed traceparent is ignored (a new trace), never a 4xx or 5xx", async () => {
      const zeroTrace = `00-${"0".repeat(32)}-${"a".repeat(16)}-01`;
      const hostile = [
        "garbage",
        zeroTrace,
        `00-${"a".repeat(32)}-${"0".repeat(16)}-01`,
        `ff-${"a".repeat(32)}-${"b".repeat(16)}-01`,
        `00-${"A".repeat(32)}-${"B".repeat(16)}-01`,
        `00-${"a".repeat(32)}-${"b".repeat(16)}-01-extra`,
        `00-${"c".repeat(32)}-${"d".repeat(16)}-01, 00-${"e".repeat(32)}-${"f".repeat(16)}-01`,
        `00-${"a".repeat(32)}-${"b".repeat(16)}-01-${"x".repeat(6000)}`,
        "00-" + "a".repeat(8000),
      ];
      for (const header of hostile) {
        const res = await t.api("POST", `/api/v1/app/${appId}/msg`, { eventType: "hostile.event", payload: {} }, { traceparent: header });
        expect(res.status, header.slice(0, 80)).toBe(202);
        const pub = await spanOf("hookwarden.publish", "hookwarden.message.id", res.body.id);
        expect(pub.parentSpanId, header.slice(0, 80)).toBeUndefined();
        expect(pub.traceId).not.toMatch(/^(0+|a+|c+|e+)$/);
      }
    });

    it("a broker destination (Redis Streams) carries the attempt's traceparent as a field", async () => {
      const key = `hwt:trace:${randomBytes(5).toString("hex")}`;
      const redis = new Redis("redis://127.0.0.1:6379");
      try {
        const app = await createApp(t, "traced-broker");
        const ep = await createEndpoint(t, app, { url: `redis://127.0.0.1:6379/0?stream=${encodeURIComponent(key)}` });
        const caller = newTraceparent();
        const msg = await publish(t, app, {}, { traceparent: caller.header });
        const att = await spanOf("hookwarden.attempt", "hookwarden.message.id", msg.id);
        expect(att.kind).toBe(PRODUCER);
        expect(att.attributes["hookwarden.endpoint.id"]).toBe(ep.id);
        const entries = await redis.xrange(key, "-", "+");
        const flat = entries[0]![1];
        const fields: Record<string, string> = {};
        for (let i = 0; i < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
        const sent = parseTraceparent(fields.traceparent);
        expect(sent.traceId).toBe(caller.traceId);
        expect(sent.parentId).toBe(att.spanId);
      } finally {
        await redis.del(key);
        redis.disconnect();
      }
    });

    it("a sync call is one attempt span, a child of the caller's traceparent; the endpoint joins the trace", async () => {
      const path = `/sync/${randomBytes(4).toString("hex")}`;
      const ep = await createEndpoint(t, appId, { url: receiver.url + path });
      const caller = newTraceparent();
      const call = await t.api("POST", `/api/v1/app/${appId}/endpoint/${ep.id}/call`, { eventType: "sync.call", payload: { n: 1 } }, { traceparent: caller.header });
      expect(call.status, call.text).toBe(200);
      const att = await spanOf("hookwarden.attempt", "hookwarden.message.id", call.body.msgId);
      const sent = parseTraceparent((await arrived(path)).headers.traceparent);
      expect(att.traceId).toBe(caller.traceId);
      expect(att.parentSpanId).toBe(caller.spanId);
      expect(att.attributes["hookwarden.attempt.id"]).toBe(call.body.attemptId);
      expect(att.attributes["http.response.status_code"]).toBe(200);
      expect(sent.traceId).toBe(caller.traceId);
      expect(sent.parentId).toBe(att.spanId);
    });

    it("ingress → forward through an agent: the forward span is the ingress span's child and the internal service joins the trace", async () => {
      const name = `traced-agent-${dialect}`;
      const path = `/internal/${randomBytes(4).toString("hex")}`;
      const { bucket, input, output } = await agentBucket(t.api, name);
      const token = await createAgentToken(t.api, { name, buckets: [name] });
      const agent = new AgentClient({ server: t.url, key: token.key, secret: new SecretValue(token.secret), routes: [{ bucket: name, forwardTo: receiver.url + path }], logger: createLogger({ level: "silent" }) });
      agent.start();
      try {
        await agent.ready();
        const provider = newTraceparent();
        const res = await send(t.url, `/in/${input.id}`, { body: JSON.stringify({ via: "agent" }), headers: { "content-type": "application/json", traceparent: provider.header } });
        expect(res.status).toBe(200);
        const ingress = await spanOf("hookwarden.ingress", "hookwarden.input.id", input.id);
        const forward = await spanOf("hookwarden.forward", "hookwarden.bucket.id", bucket.id);
        const sent = parseTraceparent((await arrived(path)).headers.traceparent);
        expect(forward.traceId).toBe(provider.traceId);
        expect(forward.parentSpanId).toBe(ingress.spanId);
        expect(forward.attributes["hookwarden.output.id"]).toBe(output.id);
        expect(forward.attributes["hookwarden.output.type"]).toBe("agent");
        expect(sent.traceId).toBe(provider.traceId);
        expect(sent.parentId).toBe(forward.spanId);
      } finally {
        await agent.stop();
      }
    });

    it("ingress → forward: the provider's traceparent is the parent, the forward is the ingress span's child, the output joins the trace", async () => {
      const path = `/out/${randomBytes(4).toString("hex")}`;
      const { bucket, input, outputs } = await setup(t, { outputs: [receiver.url + path] });
      const provider = newTraceparent();
      const res = await send(t.url, `/in/${input.id}`, { body: JSON.stringify({ hello: "world" }), headers: { "content-type": "application/json", traceparent: provider.header } });
      expect(res.status).toBe(200);
      const ingress = await spanOf("hookwarden.ingress", "hookwarden.input.id", input.id);
      const forward = await spanOf("hookwarden.forward", "hookwarden.bucket.id", bucket.id);
      const sent = parseTraceparent((await arrived(path)).headers.traceparent);

      expect(ingress.traceId).toBe(provider.traceId);
      expect(ingress.parentSpanId).toBe(provider.spanId);
      expect(ingress.kind).toBe(SERVER);
      expect(ingress.attributes["http.response.status_code"]).toBe(200);
      expect(ingress.attributes["hookwarden.bucket.id"]).toBe(bucket.id);
      expect(forward.traceId).toBe(provider.traceId);
      expect(forward.parentSpanId).toBe(ingress.spanId);
      expect(forward.attributes["hookwarden.output.id"]).toBe(outputs[0].id);
      expect(forward.attributes["hookwarden.request.id"]).toBe(ingress.attributes["hookwarden.request.id"]);
      expect(forward.attributes["http.response.status_code"]).toBe(200);
      // The provider's own traceparent is replaced by the forward span's, in the same trace.
      expect(sent.traceId).toBe(provider.traceId);
      expect(sent.parentId).toBe(forward.spanId);
      expect(collector.raw.join("\n")).not.toContain("world");
    });
  });

  describe(`tracing off (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;

    beforeAll(async () => {
      receiver = await new Receiver().start();
      t = await startTestServer(dialect);
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    it("adds no traceparent of its own and stores no trace context", async () => {
      const appId = await createApp(t, "untraced");
      await createEndpoint(t, appId, { url: receiver.url + "/plain" });
      const msg = await publish(t, appId, {});
      await receiver.waitFor(1);
      expect(receiver.received[0]!.headers.traceparent).toBeUndefined();
      const row = await t.hw.ctx.store.db.selectFrom("messages").select("trace_context").where("id", "=", msg.id).executeTakeFirstOrThrow();
      expect(row.trace_context).toBeNull();
      expect(t.hw.ctx.tracing).toBeUndefined();
    });
  });
}

