import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { DIALECTS } from "../helpers/dialects.js";
import { canary, listRequests, metric, rejectionsOf, send, setup } from "../helpers/ingress.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const LIMIT = 2048;
const PROXY = "127.0.0.1";
/** A loopback address that is not a trusted proxy: connections can come from it on Linux. */
const STRANGER = "127.0.0.2";
const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;

for (const dialect of DIALECTS) {
  describe(`ingress checks, their order and codes (${dialect})`, () => {
    let t: TestServer;
    let clock: FakeClock;

    beforeAll(async () => {
      clock = new FakeClock(Date.now());
      t = await startTestServer(dialect, { trustedProxies: [`${PROXY}/32`], maxPayloadSize: LIMIT }, { clock });
    });
    afterAll(async () => {
      await t?.stop();
    });

    it("applies the IP allowlist to the peer, believing X-Forwarded-For only from a trusted proxy", async () => {
      const { input } = await setup(t, { bucket: { ipAllowlist: ["203.0.113.0/24"] } });
      const path = `/in/${input.id}`;
      const forged = await send(t.url, path, { body: "{}", localAddress: STRANGER, headers: { "x-forwarded-for": "203.0.113.7" } });
      expect(forged.status).toBe(403);
      expect(forged.json).toEqual({ code: "E_IP_DENIED", detail: expect.any(String) });
      expect((await send(t.url, path, { body: "{}", localAddress: PROXY, headers: { "x-forwarded-for": "203.0.113.7" } })).status).toBe(200);
      expect((await send(t.url, path, { body: "{}", localAddress: PROXY })).status).toBe(403);
      // The proxy appends what it saw; anything left of that is the client's own claim.
      expect((await send(t.url, path, { body: "{}", localAddress: PROXY, headers: { "x-forwarded-for": "203.0.113.7, 198.51.100.1" } })).status).toBe(403);

      const { input: direct } = await setup(t, { bucket: { ipAllowlist: [`${STRANGER}/32`] } });
      expect((await send(t.url, `/in/${direct.id}`, { body: "{}", localAddress: STRANGER, headers: { "x-forwarded-for": "198.51.100.1" } })).status).toBe(200);
      expect((await send(t.url, `/in/${direct.id}`, { body: "{}", localAddress: PROXY, headers: { "x-forwarded-for": STRANGER } })).status).toBe(200);
      expect((await send(t.url, `/in/${direct.id}`, { body: "{}", localAddress: PROXY })).status).toBe(403);
    });

    it("limits each input to the bucket's requests per minute with 429 and Retry-After", async () => {
      const { bucket, input } = await setup(t, { bucket: { rateLimit: 3 } });
      const other = (await t.api("POST", `/api/v1/bucket/${bucket.id}/input`, { name: "other" })).body;
      for (let i = 0; i < 3; i++) expect((await send(t.url, `/in/${input.id}`, { body: `${i}` })).status).toBe(200);
      const limited = await send(t.url, `/in/${input.id}`, { body: "3" });
      expect(limited.status).toBe(429);
      expect(limited.json).toEqual({ code: "E_RATE_LIMITED", detail: expect.any(String) });
      // 3 per minute: one more token every 20 s.
      expect(limited.headers["retry-after"]).toBe("20");
      expect((await send(t.url, `/in/${other.id}`, { body: "other" })).status).toBe(200);
      clock.advance(19_000);
      expect((await send(t.url, `/in/${input.id}`, { body: "4" })).status).toBe(429);
      clock.advance(1_000);
      expect((await send(t.url, `/in/${input.id}`, { body: "5" })).status).toBe(200);
      const stored = (await t.api("GET", `/api/v1/bucket/${bucket.id}/request`)).body.data;
      expect(stored.filter((r: any) => r.inputId === input.id)).toHaveLength(4);
    });

    it("refuses bodies over --max-payload-size with 413, with or without Content-Length", async () => {
      const { input } = await setup(t);
      expect((await send(t.url, `/in/${input.id}`, { body: Buffer.alloc(LIMIT, 1) })).status).toBe(200);
      const over = await send(t.url, `/in/${input.id}`, { body: Buffer.alloc(LIMIT + 1, 1) });
      expect(over.status).toBe(413);
      expect(over.json).toEqual({ code: "E_PAYLOAD_TOO_LARGE", detail: expect.any(String) });
      expect((await send(t.url, `/in/${input.id}`, { body: Buffer.alloc(LIMIT + 1, 1), chunked: true })).status).toBe(413);
    });

    it("checks basic auth (username and password) and never shows the password again", async () => {
      const password = canary("pw");
      const created = await t.api("POST", "/api/v1/bucket", { name: "basic", auth: { type: "basic", username: "shop", password } });
      expect(created.status, created.text).toBe(201);
      expect(created.body.auth).toEqual({ type: "basic", username: "shop" });
      const input = (await t.api("POST", `/api/v1/bucket/${created.body.id}/input`, { name: "in" })).body;
      const path = `/in/${input.id}`;

      const none = await send(t.url, path, { body: "{}" });
      expect(none.status).toBe(401);
      expect(none.json).toEqual({ code: "E_UNAUTHORIZED", detail: expect.any(String) });
      expect(none.headers["www-authenticate"]).toMatch(/^Basic /);
      expect((await send(t.url, path, { body: "{}", headers: { authorization: basic("shop", `${password}x`) } })).status).toBe(401);
      expect((await send(t.url, path, { body: "{}", headers: { authorization: basic("shopx", password) } })).status).toBe(401);
      expect((await send(t.url, path, { body: "{}", headers: { authorization: `Bearer ${password}` } })).status).toBe(401);
      expect((await send(t.url, `${path}?token=${password}`, { body: "{}" })).status).toBe(401);
      expect((await send(t.url, path, { body: "{}", headers: { authorization: basic("shop", password) } })).status).toBe(200);
      // Not even inside the stored request: the credential is the bucket's, not the provider's data.
      const [stored] = await listRequests(t, created.body.id);
      const shown = await t.api("GET", `/api/v1/bucket/${created.body.id}/request/${stored.id}`);
      expect(shown.status).toBe(200);
      expect(shown.body.request.headers.map(([k]: [string]) => k.toLowerCase())).not.toContain("authorization");

      const newPassword = canary("pw2");
      const responses = [
        created,
        await t.api("GET", `/api/v1/bucket/${created.body.id}`),
        await t.api("GET", "/api/v1/bucket"),
        await t.api("PATCH", `/api/v1/bucket/${created.body.id}`, { auth: { type: "basic", username: "shop", password: newPassword } }),
        await t.api("POST", "/api/v1/bucket", { name: "weak", auth: { type: "basic", username: "u", password: "short" } }),
        shown,
        await t.api("GET", `/api/v1/bucket/${created.body.id}/request`),
      ];
      expect(responses.map((r) => r.status)).toEqual([201, 200, 200, 200, 422, 200, 200]);
      for (const r of responses) {
        expect(r.text).not.toContain(basic("shop", password).slice(6));
        expect(r.text).not.toContain(password);
        expect(r.text).not.toContain(newPassword);
        expect(r.text).not.toContain("short\"");
      }
      expect((await send(t.url, path, { body: "{}", headers: { authorization: basic("shop", password) } })).status).toBe(401);
      expect((await send(t.url, path, { body: "{}", headers: { authorization: basic("shop", newPassword) } })).status).toBe(200);
    });

    it("checks a bucket token from Authorization: Bearer or ?token=, showing a generated one only at creation", async () => {
      const created = await t.api("POST", "/api/v1/bucket", { name: "token", auth: { type: "token" } });
      expect(created.status, created.text).toBe(201);
      const token: string = created.body.token;
      expect(token.length).toBeGreaterThanOrEqual(24);
      const input = (await t.api("POST", `/api/v1/bucket/${created.body.id}/input`, { name: "in" })).body;
      const path = `/in/${input.id}`;

      expect((await send(t.url, path, { body: "{}", headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      expect((await send(t.url, `${path}/sub?a=1&token=${encodeURIComponent(token)}`, { body: "{}" })).status).toBe(200);
      for (const bad of [{}, { authorization: `Bearer ${token}x` }, { authorization: basic("x", token) }]) {
        const r = await send(t.url, path, { body: "{}", headers: bad });
        expect(r.status).toBe(401);
        expect(r.json).toEqual({ code: "E_UNAUTHORIZED", detail: expect.any(String) });
      }
      expect((await send(t.url, `${path}?token=${token.slice(0, -1)}`, { body: "{}" })).status).toBe(401);

      const requests = await listRequests(t, created.body.id);
      expect(requests).toHaveLength(2);
      const shown = await Promise.all(requests.map((r) => t.api("GET", `/api/v1/bucket/${created.body.id}/request/${r.id}`)));
      expect(shown.map((r) => r.body.request.query).sort()).toEqual(["", "a=1"]);
      const later = [...shown, await t.api("GET", `/api/v1/bucket/${created.body.id}`), await t.api("GET", "/api/v1/bucket"), await t.api("PATCH", `/api/v1/bucket/${created.body.id}`, { name: "token2" })];
      for (const r of later) {
        expect(r.status).toBe(200);
        expect(r.text).not.toContain(token);
      }
      const chosen = canary("chosen-token-value");
      const own = await t.api("POST", "/api/v1/bucket", { name: "own-token", auth: { type: "token", token: chosen } });
      expect(own.status).toBe(201);
      expect(own.text).not.toContain(chosen);
      expect(own.body.token).toBeUndefined();
    });

    it("answers a request failing several checks with the first one's code, and records and counts every rejection", async () => {
      const { bucket, input } = await setup(t, { bucket: { ipAllowlist: ["203.0.113.0/24"], rateLimit: 2, auth: { type: "token", token: "a-bucket-token-of-24-chars-or-more" } } });
      const path = `/in/${input.id}`;
      const BODY = canary("rejected-body");
      const codes = ["E_IP_DENIED", "E_RATE_LIMITED", "E_PAYLOAD_TOO_LARGE", "E_UNAUTHORIZED"];
      const before = await Promise.all(codes.map((code) => metric(t, "hookwarden_ingress_requests_total", { outcome: "rejected", code })));
      const allowed = { "x-forwarded-for": "203.0.113.9" };
      const big = BODY.padEnd(LIMIT + 1, "x");

      const steps: [Parameters<typeof send>[2], number, string | undefined][] = [
        [{ body: big }, 403, "E_IP_DENIED"],
        [{ body: big, headers: allowed }, 413, "E_PAYLOAD_TOO_LARGE"],
        [{ body: BODY, headers: allowed }, 401, "E_UNAUTHORIZED"],
        [{ body: big, headers: allowed }, 429, "E_RATE_LIMITED"],
        [{ body: big }, 403, "E_IP_DENIED"],
      ];
      for (const [opts, status, code] of steps) {
        const r = await send(t.url, path, opts);
        expect([r.status, r.json?.code]).toEqual([status, code]);
      }
      clock.advance(30_000);
      const ok = await send(t.url, path, { body: BODY, headers: { ...allowed, authorization: "Bearer a-bucket-token-of-24-chars-or-more" } });
      expect(ok.status).toBe(200);

      await vi.waitFor(async () => expect(await rejectionsOf(t, input.id)).toHaveLength(5), { timeout: 5_000 });
      const rows = await rejectionsOf(t, input.id);
      expect(rows.map((r) => [r.status_code, r.reason.split(":")[0]])).toEqual(steps.map(([, status, code]) => [status, code]));
      expect(new Set(rows.map((r) => r.bucket_id))).toEqual(new Set([bucket.id]));
      expect(rows.every((r) => typeof r.org_id === "string")).toBe(true);
      for (const r of rows) expect(r.reason).not.toContain(BODY);
      const after = await Promise.all(codes.map((code) => metric(t, "hookwarden_ingress_requests_total", { outcome: "rejected", code })));
      expect(after.map((n, i) => n - before[i]!)).toEqual([2, 1, 1, 1]);
    });

    it("logs a warning when an input keeps refusing requests", async () => {
      const { input } = await setup(t, { bucket: { auth: { type: "token" } } });
      for (let i = 0; i < 9; i++) expect((await send(t.url, `/in/${input.id}`, { body: "{}" })).status).toBe(401);
      const warnings = () => t.logs().split("\n").filter((l) => l.includes(input.id) && l.includes("keeps refusing"));
      expect(warnings()).toHaveLength(0);
      for (let i = 0; i < 5; i++) expect((await send(t.url, `/in/${input.id}`, { body: "{}" })).status).toBe(401);
      expect(warnings()).toHaveLength(1);
      expect(JSON.parse(warnings()[0]!)).toMatchObject({ level: 40, lastCode: "E_UNAUTHORIZED" });
    });
  });
}
