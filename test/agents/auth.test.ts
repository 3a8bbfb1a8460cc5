import { createHash } from "node:crypto";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLOSE, maxFrameBytes } from "../../src/agents/protocol.js";
import { agentBucket, agentServer, agentUrl, basicAuth, transportConfig, TRANSPORTS, createAgentToken, rawAgent, refusedUpgrade, spawnAgent, until, type AgentProcess, type AgentToken, type RawAgent } from "../helpers/agents.js";
import { DIALECTS } from "../helpers/dialects.js";
import { databaseText, send, storedForms } from "../helpers/ingress.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { Client, Metadata, credentials } from "@grpc/grpc-js";
import { GRPC_METHOD, decodeFrame, encodeFrame } from "../../src/agents/grpc/frame-codec.js";

/** Small, so an oversize frame is quick to send: frames may be at most maxFrameBytes(this). */
const MAX_PAYLOAD = 4096;

for (const transport of TRANSPORTS) for (const dialect of DIALECTS) {
  describe(`agent credentials and protocol limits (${dialect}, ${transport})`, () => {
    let t: TestServer;
    let svc: Receiver;
    let token: AgentToken;
    let agent: AgentProcess | undefined;
    let orders: Awaited<ReturnType<typeof agentBucket>>;
    let side: Awaited<ReturnType<typeof agentBucket>>;
    const raws: RawAgent[] = [];
    const raw = async (buckets: string | undefined, key = token.key, secret = token.secret) => {
      const r = await rawAgent(agentUrl(gateway(), buckets), key, secret);
      raws.push(r);
      return r;
    };

    const gateway = () => agentServer(t.hw, transport);

    beforeAll(async () => {
      t = await startTestServer(dialect, { maxPayloadSize: MAX_PAYLOAD, ...transportConfig(transport) });
      svc = await new Receiver().start();
      orders = await agentBucket(t.api, "orders");
      side = await agentBucket(t.api, "side");
      await agentBucket(t.api, "other");
      token = await createAgentToken(t.api, { name: "edge-1", buckets: ["orders", "side"], mode: "forward" });
      // The internal service is known to the agent only: the gateway never sees this URL.
      agent = spawnAgent({ server: gateway(), key: token.key, secret: token.secret, bucket: "orders", forwardTo: `${svc.url}/hooks` });
      await agent.waitConnected();
    }, 150_000);

    afterAll(async () => {
      for (const r of raws) r.ws.terminate();
      await agent?.stop();
      await svc?.stop();
      await t?.stop();
    });

    it("shows the secret once and stores only its hash", async () => {
      const created = await createAgentToken(t.api, { name: "once", buckets: ["orders"] });
      expect(created.secret).toMatch(/^as_[A-Za-z0-9_-]{40,}$/);
      expect(created.key).toMatch(/^ak_/);
      expect(created.mode).toBe("forward");
      const one = await t.api("GET", `/api/v1/agent-token/${created.id}`);
      const list = await t.api("GET", "/api/v1/agent-token");
      expect(one.status).toBe(200);
      expect(list.status).toBe(200);
      expect(one.body).not.toHaveProperty("secret");
      for (const text of [one.text, list.text]) {
        expect(text).not.toContain(created.secret);
        expect(text).not.toContain(createHash("sha256").update(created.secret).digest("hex"));
      }
      const stored = await databaseText(t);
      for (const form of storedForms(created.secret)) expect(stored).not.toContain(form);
      // ... and yet it authenticates: what is kept is enough to check it, not to recover it.
      const ok = await raw("orders", created.key, created.secret);
      expect(ok.frames[0]).toMatchObject({ type: "hello", name: "once", mode: "forward", buckets: [{ name: "orders" }] });
      ok.ws.close();
    });

    it("refuses a wrong secret or an unknown key at the upgrade: 401, no socket, nothing else said", async () => {
      const wrong = await refusedUpgrade(agentUrl(gateway(), "orders"), { authorization: basicAuth(token.key, `${token.secret.slice(0, -1)}x`) });
      const unknown = await refusedUpgrade(agentUrl(gateway(), "orders"), { authorization: basicAuth("ak_000000000000000000000000", token.secret) });
      const none = await refusedUpgrade(agentUrl(gateway(), "orders"), {});
      for (const r of [wrong, unknown, none]) {
        expect(r.opened).toBe(false);
        expect(r.status).toBe(401);
        expect(r.headers["sec-websocket-accept"]).toBeUndefined();
        expect(r.headers.upgrade).toBeUndefined();
        expect(JSON.parse(r.body)).toEqual({ code: "E_UNAUTHORIZED", detail: expect.any(String) });
        for (const secretish of [token.key, token.name, token.id, "orders", orders.bucket.id, "forward", "tunnel"]) expect(r.body).not.toContain(secretish);
      }
      // A wrong secret and an unknown key look the same: keys cannot be enumerated.
      expect(wrong.body).toBe(unknown.body);
    });

    it("does not let a token subscribe outside its buckets (403), whether the bucket exists or not", async () => {
      for (const buckets of ["other", "orders,other", "no-such-bucket"]) {
        const r = await refusedUpgrade(agentUrl(gateway(), buckets), { authorization: basicAuth(token.key, token.secret) });
        expect(r.opened, buckets).toBe(false);
        expect(r.status, buckets).toBe(403);
      }
      const mine = await raw(side.bucket.id);
      expect(mine.frames[0].buckets).toEqual([{ id: side.bucket.id, name: "side" }]);
      mine.ws.close();
    });

    it("keeps the mode fixed: PATCH cannot switch it, nor the buckets", async () => {
      const mode = await t.api("PATCH", `/api/v1/agent-token/${token.id}`, { mode: "tunnel" });
      expect(mode.status, mode.text).toBe(422);
      const buckets = await t.api("PATCH", `/api/v1/agent-token/${token.id}`, { buckets: ["orders", "other"] });
      expect(buckets.status, buckets.text).toBe(422);
      const renamed = await t.api("PATCH", `/api/v1/agent-token/${token.id}`, { name: "edge-1b" });
      expect(renamed.status, renamed.text).toBe(200);
      const now = await t.api("GET", `/api/v1/agent-token/${token.id}`);
      expect(now.body).toMatchObject({ mode: "forward", buckets: ["orders", "side"], name: "edge-1b" });
      // The agent's session learnt its mode at connect time; a fresh connection still says forward.
      const fresh = await raw("side");
      expect(fresh.frames[0].mode).toBe("forward");
      fresh.ws.close();
    });

    it("pushes frames without any URL: the agent alone decides where a request goes", async () => {
      const observer = await raw("side");
      const res = await fetch(`${side.input.url}/deep/path?a=1%202&flag`, { method: "POST", headers: { "content-type": "application/json", "x-trace": "t1" }, body: '{"n":1}' });
      expect(res.status).toBe(200);
      const frame = await until("a request frame", () => observer.frames.find((f) => f.type === "request"));
      observer.ws.send(JSON.stringify({ type: "ack", id: frame.id, ok: true, status: 204 }));
      expect(Object.keys(frame).sort()).toEqual(["body", "bucket", "headers", "id", "method", "path", "query", "requestId", "type"]);
      expect(frame).toMatchObject({ bucket: "side", method: "POST", path: "/deep/path", query: "a=1%202&flag" });
      expect(Buffer.from(frame.body, "base64").toString("utf8")).toBe('{"n":1}');
      const names = (frame.headers as [string, string][]).map(([k]) => k.toLowerCase());
      expect(names).toContain("x-trace");
      for (const hop of ["host", "connection", "content-length", "transfer-encoding"]) expect(names).not.toContain(hop);
      const text = JSON.stringify(frame);
      expect(text).not.toContain(new URL(t.url).host);
      expect(text).not.toMatch(/https?:\/\//);
      observer.ws.close();
    });

    it("keeps the caller's path under the agent's own destination (no dot-segment escape)", async () => {
      const before = svc.received.length;
      for (const suffix of ["/a/b?x=1%202", "/../../../admin?x=1", "/%2e%2e/%2E%2E/admin", "/a/..%2f..%2fadmin"]) {
        const res = await rawPost(`${orders.input.url}${suffix}`, `{"suffix":${JSON.stringify(suffix)}}`);
        expect(res, suffix).toBe(200);
      }
      await svc.waitFor(before + 4, 20_000);
      const got = svc.received.slice(before).map((r) => r.url).sort();
      for (const url of got) expect(url).toMatch(/^\/hooks\//);
      expect(got).toContain("/hooks/a/b?x=1%202");
      expect(got).toContain("/hooks/admin?x=1");
    });

    it("closes a connection that sends a malformed frame with a code, and serves on", async () => {
      const notJson = await raw("side");
      const notAck = await raw("side");
      const bystander = await raw("side");
      notJson.ws.send("{not json");
      notAck.ws.send(JSON.stringify({ type: "request", id: "x", url: "http://169.254.169.254/" }));
      expect((await notJson.closed).code).toBe(CLOSE.invalid);
      expect((await notAck.closed).code).toBe(CLOSE.policy);
      expect(bystander.isClosed()).toBe(false);
      expect((await fetch(`${t.url}/health`)).status).toBe(200);
      await expectStillDelivering();
      bystander.ws.close();
    });

    it("refuses an oversize frame with 1009 without crashing", async () => {
      const big = await raw("side");
      big.ws.send(JSON.stringify({ type: "ack", id: "x", ok: true, status: 200, body: "A".repeat(maxFrameBytes(MAX_PAYLOAD) + 1) }));
      expect((await big.closed).code).toBe(CLOSE.tooBig);
      expect((await fetch(`${t.url}/health`)).status).toBe(200);
      await expectStillDelivering();
    });

    it("survives a client that resets its socket while the upgrade is being authenticated", async () => {
      if (transport === "grpc") {
        // A stream cancelled while its credentials are looked up; another sends frames unauthenticated.
        for (let i = 0; i < 20; i++) {
          const c = new Client(new URL(gateway()).host, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
          const md = new Metadata();
          md.set("authorization", basicAuth(token.key, i % 2 ? token.secret : "wrong"));
          md.set("hookwarden-buckets", "orders");
          const call = c.makeBidiStreamRequest(GRPC_METHOD, encodeFrame, decodeFrame, md, {});
          call.on("error", () => {});
          call.write(JSON.stringify({ type: "ack", id: "x", ok: true, status: 200 }));
          call.cancel();
          c.close();
        }
        expect((await fetch(`${t.url}/health`)).status).toBe(200);
        await expectStillDelivering();
        return;
      }
      for (let i = 0; i < 20; i++) {
        const s = connect(Number(new URL(t.url).port), "127.0.0.1");
        await new Promise<void>((resolve) => s.once("connect", () => resolve()));
        s.on("error", () => {});
        s.write(
          `GET /agent/connect?buckets=orders HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: ${basicAuth(token.key, i % 2 ? token.secret : "wrong")}\r\n\r\n`,
        );
        s.resetAndDestroy();
      }
      expect((await fetch(`${t.url}/health`)).status).toBe(200);
      await expectStillDelivering();
    });

    it("revokes with DELETE: connected agents are closed with 4001 and cannot come back", async () => {
      const connected = await raw("side");
      const del = await t.api("DELETE", `/api/v1/agent-token/${token.id}`);
      expect(del.status).toBe(204);
      expect((await connected.closed).code).toBe(CLOSE.revoked);
      const again = await refusedUpgrade(agentUrl(gateway(), "side"), { authorization: basicAuth(token.key, token.secret) });
      expect(again.status).toBe(401);
      // The agent process was closed too; its reconnects are refused, and nothing reaches it.
      await until("the agent to report the refusal", () => /refused this agent.s key or secret/.test(agent!.output()), 20_000).catch((e: unknown) => { throw new Error(`${String(e)}\n${agent!.output()}`); });
      expect(t.hw.agents.connections).toBe(0);
      // ... and it stops there with its exit code instead of retrying a refusal forever.
      expect((await agent!.exited).code).toBe(3);
    });

    /** A webhook to `orders` still reaches the internal service through the agent process. */
    async function expectStillDelivering(): Promise<void> {
      const body = `{"alive":${Date.now()}${Math.random()}}`;
      expect(await rawPost(orders.input.url, body)).toBe(200);
      await until("the webhook to reach the internal service", () => svc.received.some((r) => r.body === body), 20_000);
    }
  });
}

/** POST with node:http so the path is sent exactly as written (fetch would resolve dot segments). */
async function rawPost(url: string, body: string): Promise<number> {
  const u = new URL(url);
  const path = url.slice(url.indexOf("/", u.protocol.length + 2));
  return (await send(u.origin, path, { body, headers: { "content-type": "application/json" } })).status;
}
