import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { agentBucket, createAgentToken, spawnAgent } from "../helpers/agents.js";
import { closedPort } from "../helpers/delivery.js";
import { DIALECTS } from "../helpers/dialects.js";
import { getRequest, listRequests, RawReceiver, send, setup, type RawResponse } from "../helpers/ingress.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/** Everything a public caller sees of an answer, as one lower-case string. */
function seen(r: RawResponse): string {
  return `${r.status}\n${JSON.stringify(r.headers)}\n${r.text}`.toLowerCase();
}

/** Words that would tell a public caller about the destination or the SSRF policy. */
function leaks(r: RawResponse, destination: URL): string[] {
  const text = seen(r);
  const words = [destination.hostname, destination.port, destination.host, "127.0.0.1", "localhost", "private", "ssrf", "allow-private", "blocked", "refused", "econn", "loopback", "timeout", "resolve"];
  return words.filter((w) => w !== "" && text.includes(w.toLowerCase()));
}

for (const dialect of DIALECTS) {
  describe(`public answers of wait-mode inputs say nothing about the destination (${dialect})`, () => {
    /** Deliveries to 127.0.0.0/8 allowed (unreachable port, slow destination); attempts time out after 400 ms. */
    let open: TestServer;
    /** The default SSRF policy: loopback is blocked. */
    let strict: TestServer;
    let receiver: RawReceiver;

    beforeAll(async () => {
      open = await startTestServer(dialect, { requestTimeout: 400 });
      strict = await startTestServer(dialect, { allowPrivateNetworks: [] });
      receiver = await new RawReceiver().start();
      receiver.respond = () => ({ status: 200, body: "too late", delayMs: 3_000 });
    });
    afterAll(async () => {
      await open?.stop();
      await strict?.stop();
      await receiver?.stop();
    });

    /** Posts once to a wait-mode input whose only output is `url`; returns the answer and the owner's attempt record. */
    async function probe(t: TestServer, url: string): Promise<{ res: RawResponse; attempt: any }> {
      const { bucket, input } = await setup(t, { input: { response: { mode: "wait", timeoutMs: 10_000 } }, outputs: [url] });
      const res = await send(t.url, `/in/${input.id}`, { body: "{}", headers: { "content-type": "application/json" } });
      const [summary] = await listRequests(t, bucket.id);
      let attempt: any;
      await vi.waitFor(async () => {
        const r = await getRequest(t, bucket.id, summary.id);
        expect(r.attempts.length).toBeGreaterThan(0);
        attempt = r.attempts[0];
      });
      return { res, attempt };
    }

    const GENERIC = { code: "E_DESTINATION_UNAVAILABLE", detail: "The destination could not be reached" };

    it("a destination the SSRF policy blocks: a generic 502; the owner's attempt names the reason", async () => {
      const url = `http://localhost:${await closedPort()}/hook`;
      const { res, attempt } = await probe(strict, url);
      expect(res.status).toBe(502);
      expect(res.json).toEqual(GENERIC);
      expect(leaks(res, new URL(url))).toEqual([]);
      expect(attempt.errorCode).toBe("E_SSRF_BLOCKED");
      expect(attempt.response).toContain("localhost (127.0.0.1)");
      expect(attempt.response).toContain("private");
    });

    it("an unreachable port: a generic 502; the owner's attempt names the reason", async () => {
      const url = `http://127.0.0.1:${await closedPort()}/hook`;
      const { res, attempt } = await probe(open, url);
      expect(res.status).toBe(502);
      expect(res.json).toEqual(GENERIC);
      expect(leaks(res, new URL(url))).toEqual([]);
      expect(attempt.errorCode).toBe("E_CONNECT");
      expect(attempt.response).toContain("ECONNREFUSED");
    });

    it("a destination that does not answer within the attempt timeout: a generic 502; the owner's attempt names the reason", async () => {
      const url = `${receiver.url}/slow`;
      const { res, attempt } = await probe(open, url);
      expect(res.status).toBe(502);
      expect(res.json).toEqual(GENERIC);
      expect(leaks(res, new URL(url))).toEqual([]);
      expect(attempt.errorCode).toBe("E_TIMEOUT");
      expect(attempt.response).toContain("timeout");
    });

    it("a tunnel agent whose internal service is down: a generic 502; the owner's attempt names the reason", async () => {
      const port = await closedPort();
      const { bucket, input } = await agentBucket(open.api, "tunnel-down", { input: { response: { mode: "wait", timeoutMs: 10_000 } } });
      const token = await createAgentToken(open.api, { name: "tun-down", buckets: [bucket.id], mode: "tunnel" });
      const agent = spawnAgent({ server: open.url, key: token.key, secret: token.secret, bucket: bucket.id, forwardTo: `http://127.0.0.1:${port}/internal` });
      try {
        await agent.waitConnected();
        const res = await send(open.url, `/in/${input.id}`, { body: "{}", headers: { "content-type": "application/json" } });
        expect(res.status).toBe(502);
        expect(res.json).toEqual(GENERIC);
        expect(leaks(res, new URL(`http://127.0.0.1:${port}/internal`))).toEqual([]);
        const [summary] = await listRequests(open, bucket.id);
        await vi.waitFor(async () => {
          const r = await getRequest(open, bucket.id, summary.id);
          expect(r.attempts[0]?.response).toContain("ECONNREFUSED");
        });
      } finally {
        await agent.stop();
      }
    }, 60_000);

    it("a destination later than the input's wait: a generic 504 that does not echo the input's settings", async () => {
      const { input } = await setup(open, { input: { response: { mode: "wait", timeoutMs: 150 } }, outputs: [`${receiver.url}/late`] });
      const res = await send(open.url, `/in/${input.id}`, { body: "{}" });
      expect(res.status).toBe(504);
      expect(res.json).toEqual({ code: "E_DESTINATION_TIMEOUT", detail: "The destination did not answer in time" });
      expect(leaks(res, new URL(receiver.url)).filter((w) => w !== "timeout")).toEqual([]);
      expect(res.text).not.toContain("150");
    });
  });
}
