import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../helpers/dialects.js";
import { attemptsOf, closedPort, createApp, createEndpoint, HttpsReceiver, pendingJobs, publish, selfSignedCert, type ApiAttempt } from "../helpers/delivery.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const BIG_BODY = "x".repeat(200 * 1024);
const TLS = selfSignedCert();

for (const dialect of DIALECTS) {
  describe(`how deliveries travel and fail (${dialect})`, () => {
    let t: TestServer;
    /** Short attempt timeout and a small response cap, to prove both settings are honoured. */
    let tight: TestServer;
    let receiver: Receiver;
    let other: Receiver;
    let https: HttpsReceiver;

    beforeAll(async () => {
      // No retries: every failure below is final, so its single attempt is the whole story.
      t = await startTestServer(dialect, { retrySchedule: [] });
      tight = await startTestServer(dialect, { retrySchedule: [], requestTimeout: 300, responseBodyLimit: 1000 });
      receiver = await new Receiver().start();
      other = await new Receiver().start();
      https = await new HttpsReceiver(TLS).start();
      receiver.respond = (req) => {
        if (req.url === "/redirect") return { status: 302, headers: { location: `${other.url}/stolen` }, body: "moved" };
        if (req.url === "/slow") return { delayMs: 2_000 };
        if (req.url === "/401") return { status: 401, body: "who are you" };
        if (req.url === "/403") return { status: 403, body: "go away" };
        if (req.url === "/500") return { status: 500, body: "database exploded at line 42" };
        if (req.url === "/big") return { body: BIG_BODY };
        if (req.url === "/big-500") return { status: 500, body: BIG_BODY };
        if (req.url === "/204") return { status: 204, body: "" };
        if (req.url === "/binary") return { headers: { "content-type": "image/png" }, body: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0x0a, 0xff]) };
        return undefined;
      };
    });
    afterAll(async () => {
      await t?.stop();
      await tight?.stop();
      await receiver?.stop();
      await other?.stop();
      await https?.stop();
    });

    /** Sends one message to a new endpoint at `url` and returns its single attempt. */
    async function attemptAt(server: TestServer, url: string, endpoint: Record<string, unknown> = {}): Promise<ApiAttempt> {
      const appId = await createApp(server, url);
      await createEndpoint(server, appId, { url, ...endpoint });
      const msg = await publish(server, appId, { payload: { url } });
      await server.hw.worker.runUntilIdle();
      const attempts = await attemptsOf(server, appId, msg.id);
      expect(attempts).toHaveLength(1);
      expect(await pendingJobs(server)).toBe(0);
      return attempts[0]!;
    }

    it("records a 2xx as a success with the response", async () => {
      const a = await attemptAt(t, `${receiver.url}/ok`);
      expect(a).toMatchObject({ status: 0, statusText: "success", responseStatusCode: 200, response: "ok", errorCode: null, tlsVerify: true, url: `${receiver.url}/ok` });
      expect((await attemptAt(t, `${receiver.url}/204`)).status).toBe(0);
    });

    it("records a binary answer (NUL bytes included) once, on both databases, without delivering again", async () => {
      const a = await attemptAt(t, `${receiver.url}/binary`);
      expect(a).toMatchObject({ status: 0, responseStatusCode: 200, response: "\uFFFDPNG\uFFFD\n\uFFFD" });
      expect(receiver.received.filter((r) => r.url === "/binary")).toHaveLength(1);
    });

    it("does not follow redirects: a 302 is a failed attempt and its target gets nothing", async () => {
      const a = await attemptAt(t, `${receiver.url}/redirect`);
      expect(a).toMatchObject({ status: 2, statusText: "fail", responseStatusCode: 302, errorCode: "E_HTTP_STATUS" });
      expect(other.received).toHaveLength(0);
    });

    it("gives up on an endpoint slower than requestTimeout with E_TIMEOUT", async () => {
      const a = await attemptAt(tight, `${receiver.url}/slow`);
      expect(a).toMatchObject({ status: 2, responseStatusCode: 0, errorCode: "E_TIMEOUT" });
      // Waited out the timeout rather than failing fast. Node's timers run on the event loop's
      // cached millisecond clock, so the timer can fire a little before 300 ms by performance.now().
      expect(a.responseDurationMs).toBeGreaterThanOrEqual(250);
      expect(a.responseDurationMs).toBeLessThan(2_000);
    });

    it("reports a refused connection as E_CONNECT", async () => {
      const port = await closedPort();
      const a = await attemptAt(t, `http://127.0.0.1:${port}/hook`);
      expect(a).toMatchObject({ status: 2, responseStatusCode: 0, errorCode: "E_CONNECT" });
      expect(a.response).not.toContain(String(port)); // the detail names no URL
    });

    it("reports 401 and 403 as E_ENDPOINT_AUTH", async () => {
      expect(await attemptAt(t, `${receiver.url}/401`)).toMatchObject({ status: 2, responseStatusCode: 401, errorCode: "E_ENDPOINT_AUTH", response: "who are you" });
      expect(await attemptAt(t, `${receiver.url}/403`)).toMatchObject({ status: 2, responseStatusCode: 403, errorCode: "E_ENDPOINT_AUTH", response: "go away" });
    });

    it("reports a 500 as E_HTTP_STATUS and keeps the response body for the user", async () => {
      const a = await attemptAt(t, `${receiver.url}/500`);
      expect(a).toMatchObject({ status: 2, responseStatusCode: 500, errorCode: "E_HTTP_STATUS", response: "database exploded at line 42" });
    });

    it("stores at most 64 KiB of a response by default", async () => {
      const ok = await attemptAt(t, `${receiver.url}/big`);
      expect(ok.status).toBe(0);
      expect(ok.response).toHaveLength(65_536);
      expect(ok.response).toBe(BIG_BODY.slice(0, 65_536));
      const failed = await attemptAt(t, `${receiver.url}/big-500`);
      expect(failed.errorCode).toBe("E_HTTP_STATUS");
      expect(failed.response).toHaveLength(65_536);
    });

    it("honours a configured responseBodyLimit", async () => {
      const a = await attemptAt(tight, `${receiver.url}/big`);
      expect(a.status).toBe(0);
      expect(a.response).toHaveLength(1_000);
    });

    it("refuses a certificate no CA vouches for with E_TLS", async () => {
      const a = await attemptAt(t, `${https.url}/verified`);
      expect(a).toMatchObject({ status: 2, responseStatusCode: 0, errorCode: "E_TLS", tlsVerify: true });
      expect(https.received).toHaveLength(0);
    });

    it("delivers over unverified TLS only to an endpoint that opted out, and says so", async () => {
      const appId = await createApp(t, "tls-off");
      const ep = await createEndpoint(t, appId, { url: `${https.url}/unverified`, tlsVerify: false });
      expect(ep.tlsVerify).toBe(false);
      expect(ep.warnings).toEqual([expect.objectContaining({ code: "E_TLS_UNVERIFIED" })]);
      const msg = await publish(t, appId, { payload: { over: "tls" } });
      await t.hw.worker.runUntilIdle();
      const [a, ...rest] = await attemptsOf(t, appId, msg.id);
      expect(rest).toHaveLength(0);
      expect(a).toMatchObject({ status: 0, responseStatusCode: 200, response: "secure ok", errorCode: null, tlsVerify: false });
      expect(https.received.map((r) => JSON.parse(r.body))).toEqual([{ over: "tls" }]);

      const warnings = t
        .logs()
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { level: number; msg: string; endpointId?: string })
        .filter((l) => l.level === 40 && l.endpointId === ep.id && /TLS verification/i.test(l.msg));
      expect(warnings.map((w) => w.msg)).toContain("delivering without TLS verification (endpoint opted out)");
    });

    it("cuts off a response body that never ends at requestTimeout", async () => {
      const trickle = createServer((_req, res) => {
        res.writeHead(200, { "content-type": "text/plain" });
        res.write("still ");
        const timer = setInterval(() => res.write("going "), 50);
        res.on("close", () => clearInterval(timer));
      });
      await new Promise<void>((resolve) => trickle.listen(0, "127.0.0.1", resolve));
      try {
        const a = await attemptAt(tight, `http://127.0.0.1:${(trickle.address() as AddressInfo).port}/trickle`);
        expect(a).toMatchObject({ status: 2, errorCode: "E_TIMEOUT" });
        // Waited out the timeout (the timer may fire a little early by performance.now(), see above).
        expect(a.responseDurationMs).toBeGreaterThanOrEqual(250);
        expect(a.responseDurationMs).toBeLessThan(2_000);
      } finally {
        trickle.closeAllConnections();
        await new Promise<void>((resolve) => trickle.close(() => resolve()));
      }
    });
  });
}
