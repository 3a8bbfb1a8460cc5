import { Agent, fetch } from "undici";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DIALECTS } from "../helpers/dialects.js";
import { canary, send, setup } from "../helpers/ingress.js";
import { github, githubBody, githubSecret } from "../helpers/provider-requests.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const KEPT = 20;

interface SseEvent {
  event: string;
  id: string | undefined;
  data: any;
}

/**
 * An open event stream read as a user agent would (WHATWG HTML "event stream" parsing, the parts
 * used here). Its own connection pool, destroyed on close: the global one opens a spare connection
 * after an abort, which a closing server then waits on until the headers timeout.
 */
async function openStream(url: string, headers: Record<string, string>) {
  const ctrl = new AbortController();
  const agent = new Agent();
  const res = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: ctrl.signal, dispatcher: agent });
  const events: SseEvent[] = [];
  const comments: string[] = [];
  let ended = false;
  const done = (async () => {
    if (!res.body) return;
    const decoder = new TextDecoder();
    let buf = "";
    try {
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk as Uint8Array, { stream: true });
        let at: number;
        while ((at = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, at);
          buf = buf.slice(at + 2);
          const ev: SseEvent = { event: "message", id: undefined, data: undefined };
          let data: string | undefined;
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) comments.push(line.slice(1).trim());
            else if (line.startsWith("event: ")) ev.event = line.slice(7);
            else if (line.startsWith("id: ")) ev.id = line.slice(4);
            else if (line.startsWith("data: ")) data = (data === undefined ? "" : data + "\n") + line.slice(6);
          }
          if (data !== undefined) {
            ev.data = JSON.parse(data);
            events.push(ev);
          }
        }
      }
    } catch {
      // aborted by the test
    }
    ended = true;
  })();
  return {
    res,
    events,
    comments,
    ended: () => ended,
    done,
    close: () => {
      ctrl.abort();
      void agent.destroy();
    },
  };
}

for (const dialect of DIALECTS) {
  describe(`rejected inbound requests and the live tail (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;
    beforeAll(async () => {
      t = await startTestServer(dialect, { rejectionsKept: KEPT, pollInterval: 200, streamHeartbeat: 100 });
      receiver = await new Receiver().start();
    });
    afterAll(async () => {
      await receiver?.stop();
      await t?.stop();
    }, 60_000);

    it("lists rejected requests with method, code and reason, never their body or credentials; the caller's answer is unchanged", async () => {
      const { bucket, input } = await setup(t, { bucket: { auth: { type: "token", token: "bucket-token-0123456789abcdef" } }, input: { verification: { type: "github", secret: githubSecret } } });
      const url = `/in/${input.id}`;
      const SECRET_BODY = canary("rejected-body");
      const auth = { authorization: "Bearer bucket-token-0123456789abcdef" };
      const noAuth = await send(t.url, url, { body: SECRET_BODY, headers: { authorization: "Bearer wrong-credential-xyz" } });
      expect([noAuth.status, noAuth.json]).toEqual([401, { code: "E_UNAUTHORIZED", detail: "Missing or wrong credentials" }]);
      const forgedBody = githubBody(SECRET_BODY);
      const forged = await send(t.url, url, { method: "PUT", body: forgedBody, headers: { ...auth, ...(await github(forgedBody, "not-the-secret")) } });
      expect([forged.status, forged.json?.code]).toEqual([401, "E_SIGNATURE_INVALID"]);
      const goodBody = githubBody("accepted");
      expect((await send(t.url, url, { body: goodBody, headers: { ...auth, ...(await github(goodBody)) } })).status).toBe(200);

      const list = async (q: string) => {
        const r = await t.api("GET", `/api/v1/bucket/${bucket.id}/request${q}`);
        expect(r.status, r.text).toBe(200);
        return r;
      };
      await vi.waitFor(async () => expect((await list("?status=rejected")).body.data).toHaveLength(2), { timeout: 5_000 });
      const rejected = await list("?status=rejected");
      expect(rejected.body.data).toEqual([
        expect.objectContaining({ inputId: input.id, status: "rejected", method: "PUT", statusCode: 401, size: 0, rejectionCode: "E_SIGNATURE_INVALID", rejectionReason: expect.any(String) }),
        expect.objectContaining({ inputId: input.id, status: "rejected", method: "POST", statusCode: 401, size: 0, rejectionCode: "E_UNAUTHORIZED", rejectionReason: "Missing or wrong credentials" }),
      ]);
      for (const secret of [SECRET_BODY, "wrong-credential-xyz", "not-the-secret", githubSecret, "bucket-token-0123456789abcdef"]) expect(rejected.text).not.toContain(secret);
      // Default: accepted only (as before); `all`: both, newest first.
      const accepted = await list("");
      expect(accepted.body.data.map((r: any) => r.status)).toEqual(["accepted"]);
      const all = await list("?status=all");
      expect(all.body.data.map((r: any) => [r.status, r.rejectionCode])).toEqual([
        ["accepted", null],
        ["rejected", "E_SIGNATURE_INVALID"],
        ["rejected", "E_UNAUTHORIZED"],
      ]);
      // Pages across both kinds follow the same order.
      const first = await list("?status=all&limit=2");
      expect(first.body.done).toBe(false);
      const rest = await list(`?status=all&limit=2&iterator=${first.body.iterator}`);
      expect([...first.body.data, ...rest.body.data].map((r: any) => r.id)).toEqual(all.body.data.map((r: any) => r.id));
      expect((await t.api("GET", `/api/v1/bucket/${bucket.id}/request?status=refused`)).status).toBe(422);
      // Hostile cursors: a stable 4xx or an empty page, never a 5xx.
      for (const iterator of ["%00", "rej_%00", "__proto__", "x".repeat(256), "req_", "%F0%9F%92%A9"]) {
        const r = await t.api("GET", `/api/v1/bucket/${bucket.id}/request?status=all&iterator=${iterator}`);
        expect(r.status, `${iterator}: ${r.text}`).toBeLessThan(500);
        if (r.status !== 200) expect(r.body.code).toMatch(/^E_/);
      }
      // Another organisation sees nothing of it.
      const other = await t.newOrgToken("other");
      const foreign = await fetch(`${t.url}/api/v1/bucket/${bucket.id}/request?status=rejected`, { headers: { authorization: `Bearer ${other}` } });
      expect(foreign.status).toBe(404);
    });

    it("keeps a bucket's newest rejections only: a flood of forged posts stays bounded", async () => {
      const { bucket, input } = await setup(t, { bucket: { auth: { type: "token", token: "flood-token-0123456789abcdef" } } });
      const FLOOD = 10 * KEPT;
      for (let i = 0; i < FLOOD; i += 20) {
        const batch = await Promise.all(Array.from({ length: 20 }, () => send(t.url, `/in/${input.id}`, { body: "x" })));
        expect(batch.every((r) => r.status === 401)).toBe(true);
      }
      // The last one, told apart by its method.
      expect((await send(t.url, `/in/${input.id}`, { method: "PATCH", body: "x" })).status).toBe(401);
      const count = async () => Number((await t.hw.ctx.store.db.selectFrom("inbound_rejections").select((eb) => eb.fn.countAll().as("n")).where("bucket_id", "=", bucket.id).executeTakeFirstOrThrow()).n);
      const newest = async () => (await t.api("GET", `/api/v1/bucket/${bucket.id}/request?status=rejected&limit=1`)).body.data[0]?.method;
      // The trim runs after the insert of the batch that holds the PATCH: a count between the two
      // saw that whole batch untrimmed (28 rows, on a slow machine). Wait for both; a trim that
      // never comes times out here.
      await vi.waitFor(
        async () => {
          expect(await newest()).toBe("PATCH");
          expect(await count()).toBeLessThanOrEqual(KEPT + KEPT / 10);
        },
        { timeout: 10_000 },
      );
      const n = await count();
      // The cap, plus at most the tenth recorded since the last trim.
      expect(n).toBeGreaterThanOrEqual(KEPT);
      expect(n).toBeLessThanOrEqual(KEPT + KEPT / 10);
      const listed = await t.api("GET", `/api/v1/bucket/${bucket.id}/request?status=rejected&limit=250`);
      expect(listed.body.data).toHaveLength(n);
    }, 60_000);

    it("streams a bucket's arrivals (verification, rejection reason, forward outcome) as Server-Sent Events, scoped to the bucket and organisation", async () => {
      const { bucket, input } = await setup(t, { input: { verification: { type: "github", secret: githubSecret } }, outputs: [`${receiver.url}/tail`] });
      const elsewhere = await setup(t, {});
      const base = `${t.url}/api/v1/bucket/${bucket.id}/request/stream`;
      const stream = await openStream(base, { authorization: `Bearer ${t.token}` });
      try {
        expect(stream.res.status).toBe(200);
        expect(stream.res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
        expect(stream.res.headers.get("cache-control")).toBe("no-store");

        const body = githubBody("streamed");
        expect((await send(t.url, `/in/${input.id}`, { body, headers: await github(body) })).status).toBe(200);
        const forgedBody = githubBody("forged-in-stream");
        expect((await send(t.url, `/in/${input.id}`, { body: forgedBody, headers: await github(forgedBody, "wrong") })).status).toBe(401);
        expect((await send(t.url, `/in/${elsewhere.input.id}`, { body: "{}" })).status).toBe(200);

        await vi.waitFor(() => {
          const rows = stream.events.filter((e) => e.event === "request").map((e) => e.data);
          expect(rows.some((r) => r.status === "accepted" && r.verification === "verified (github)" && r.forward?.state === "delivered" && r.forward.statusCode === 200)).toBe(true);
          expect(rows.some((r) => r.status === "rejected" && r.rejectionCode === "E_SIGNATURE_INVALID" && r.verification === "E_SIGNATURE_INVALID" && r.forward === null)).toBe(true);
        }, { timeout: 15_000 });
        // Only this bucket's requests, and nothing of the bodies.
        expect(stream.events.every((e) => e.data.inputId === input.id)).toBe(true);
        expect(JSON.stringify(stream.events)).not.toContain("forged-in-stream");
        expect(JSON.stringify(stream.events)).not.toContain("streamed");
        // An accepted row is sent again as its forward outcome changes, never the same state twice.
        const states = stream.events.filter((e) => e.data.status === "accepted").map((e) => JSON.stringify(e.data));
        expect(new Set(states).size).toBe(states.length);
        await vi.waitFor(() => expect(stream.comments).toContain("ping"), { timeout: 5_000 });
      } finally {
        stream.close();
      }

      // Scope: another organisation's token gets a 404, like the bucket itself.
      const other = await t.newOrgToken("stranger");
      expect((await fetch(base, { headers: { authorization: `Bearer ${other}` } })).status).toBe(404);
      expect((await fetch(base)).status).toBe(401);
    }, 60_000);

    it("caps the streams one caller may hold open, and frees a slot when one closes", async () => {
      const { bucket } = await setup(t, {});
      const url = `${t.url}/api/v1/bucket/${bucket.id}/request/stream`;
      const token = await t.newOrgToken("capped");
      const own = await fetch(`${t.url}/api/v1/bucket`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ name: "capped" }) });
      const ownBucket = (await own.json()) as { id: string };
      const ownUrl = `${t.url}/api/v1/bucket/${ownBucket.id}/request/stream`;
      const streams = [];
      for (let i = 0; i < 4; i++) {
        const s = await openStream(ownUrl, { authorization: `Bearer ${token}` });
        expect(s.res.status).toBe(200);
        streams.push(s);
      }
      const fifth = await fetch(ownUrl, { headers: { authorization: `Bearer ${token}` } });
      expect([fifth.status, ((await fifth.json()) as { code: string }).code]).toEqual([429, "E_TOO_MANY_STREAMS"]);
      // Another caller is not affected.
      const admin = await openStream(url, { authorization: `Bearer ${t.token}` });
      expect(admin.res.status).toBe(200);
      admin.close();
      streams.pop()!.close();
      await vi.waitFor(async () => {
        const again = await openStream(ownUrl, { authorization: `Bearer ${token}` });
        try {
          expect(again.res.status).toBe(200);
        } finally {
          again.close();
        }
      }, { timeout: 5_000 });
      for (const s of streams) s.close();
    });

    it("a console session opens the stream without the CSRF header (EventSource cannot send one), nothing else; at most 4 per session; a portal session cannot", async () => {
      const { bucket } = await setup(t, {});
      const signIn = async (body: Record<string, unknown>) => {
        const res = await fetch(`${t.url}/console/api/session`, { method: "POST", headers: { "content-type": "application/json", "x-hookwarden-console": "1" }, body: JSON.stringify(body) });
        expect(res.status).toBe(201);
        return res.headers.get("set-cookie")!.split(";")[0]!;
      };
      const cookie = await signIn({ token: t.token });
      const url = `${t.url}/api/v1/bucket/${bucket.id}/request/stream`;
      const streams = [];
      for (let i = 0; i < 4; i++) {
        const s = await openStream(url, { cookie });
        expect(s.res.status).toBe(200);
        streams.push(s);
      }
      // Other cookies beside the session's change nothing.
      const fifth = await fetch(url, { headers: { cookie: `${cookie}; theme=dark${Math.random()}` } });
      expect(fifth.status).toBe(429);
      await fifth.body?.cancel();
      // Every other cookie call still needs the header, the stream's own path with a suffix too.
      expect((await fetch(`${t.url}/api/v1/bucket/${bucket.id}/request`, { headers: { cookie } })).status).toBe(403);
      expect((await fetch(`${url}x`, { headers: { cookie } })).status).toBe(403);
      expect((await fetch(`${t.url}/api/v1/bucket`, { method: "POST", headers: { cookie, "content-type": "application/json" }, body: "{\"name\":\"csrf\"}" })).status).toBe(403);
      for (const s of streams) s.close();
      // A portal session (one application) reaches no bucket.
      const app = await t.api("POST", "/api/v1/app", { name: "portal-app" });
      const portal = await signIn({ token: t.token, app: app.body.id });
      const refused = await fetch(url, { headers: { cookie: portal } });
      expect(refused.status).toBe(404);
    });

    it("server shutdown ends open streams, and connections that never sent a request, without waiting for them", async () => {
      // Headers and requests may take 10 minutes: nothing but the shutdown itself may end them here.
      const t2 = await startTestServer(dialect, { inboundHeadersTimeout: 600_000, inboundRequestTimeout: 600_000 });
      const { bucket } = await setup(t2, {});
      const s = await openStream(`${t2.url}/api/v1/bucket/${bucket.id}/request/stream`, { authorization: `Bearer ${t2.token}` });
      expect(s.res.status).toBe(200);
      // And a connection that never sent a request (a client's spare socket, or a stalled one).
      const url = new URL(t2.url);
      const spare = connect(Number(url.port), url.hostname);
      await new Promise((resolve) => spare.once("connect", resolve));
      const spareClosed = new Promise((resolve) => spare.once("close", resolve));
      // A stream or a spare connection holding the close would keep stop() from resolving until
      // the headers timeout (10 minutes here): the test would time out.
      await t2.stop();
      await spareClosed;
      await s.done;
      expect(s.ended()).toBe(true);
    }, 30_000);
  });
}

describe("live tail on two nodes sharing one PostgreSQL database", () => {
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    const masterKey = randomBytes(32).toString("base64");
    a = await startTestServer("postgres", { masterKey, pollInterval: 200 });
    b = await startTestServer("postgres", { masterKey, pollInterval: 200, databaseSchema: a.schema!, adminToken: a.token });
  }, 60_000);
  afterAll(async () => {
    await b?.hw.stop();
    if (b) rmSync(b.dataDir, { recursive: true, force: true });
    await a?.stop();
  });

  it("a stream on one node shows requests accepted and rejected on the other", async () => {
    const { bucket, input } = await setup(a, { input: { verification: { type: "github", secret: githubSecret } } });
    const stream = await openStream(`${a.url}/api/v1/bucket/${bucket.id}/request/stream`, { authorization: `Bearer ${a.token}` });
    try {
      expect(stream.res.status).toBe(200);
      const body = githubBody("on-node-b");
      expect((await send(b.url, `/in/${input.id}`, { body, headers: await github(body) })).status).toBe(200);
      expect((await send(b.url, `/in/${input.id}`, { body, headers: await github(body, "forged") })).status).toBe(401);
      await vi.waitFor(() => {
        const rows = stream.events.map((e) => e.data);
        expect(rows.some((r) => r.status === "accepted" && r.verification === "verified (github)")).toBe(true);
        expect(rows.some((r) => r.status === "rejected" && r.rejectionCode === "E_SIGNATURE_INVALID")).toBe(true);
      }, { timeout: 15_000 });
    } finally {
      stream.close();
    }
  });
});
