import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../helpers/dialects.js";
import { attemptsOf, createApp, createEndpoint, publish } from "../helpers/delivery.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/** Addresses an attacker would aim a webhook at: loopback, metadata, private, unspecified. */
const BLOCKED_AT_SAVE = [
  "http://169.254.169.254/latest/meta-data/",
  "http://[::ffff:169.254.169.254]/",
  "http://[::1]:8080/",
  "http://10.0.0.1/hook",
  "http://192.168.1.1/hook",
  "http://100.100.100.200/",
  "http://0.0.0.0:8080/",
  "http://2130706433/", // 127.0.0.1 written as one number
  "http://[::7f00:1]/", // ::127.0.0.1, an "IPv4-compatible" address (RFC 4291 §2.5.5.1)
  "http://[::a9fe:a9fe]/", // ::169.254.169.254
  "http://[64:ff9b::a9fe:a9fe]/", // NAT64 of the metadata address
];

for (const dialect of DIALECTS) {
  describe(`SSRF protection of outbound deliveries (${dialect})`, () => {
    /** A server as it ships: no private network allowed. */
    let strict: TestServer;
    /** The same with `allowPrivateNetworks: ["127.0.0.0/8"]`. */
    let allowed: TestServer;
    let receiver: Receiver;
    let port: string;

    beforeAll(async () => {
      strict = await startTestServer(dialect, { allowPrivateNetworks: [], retrySchedule: [] });
      allowed = await startTestServer(dialect, { allowPrivateNetworks: ["127.0.0.0/8"], retrySchedule: [] });
      receiver = await new Receiver().start();
      port = new URL(receiver.url).port;
    });
    afterAll(async () => {
      await strict?.stop();
      await allowed?.stop();
      await receiver?.stop();
    });

    it("refuses to save an endpoint at a loopback IP", async () => {
      const appId = await createApp(strict, "loopback");
      const res = await strict.api("POST", `/api/v1/app/${appId}/endpoint`, { url: `http://127.0.0.1:${port}/hook` });
      expect(res.status).toBe(422);
      expect(res.body.code).toBe("E_SSRF_BLOCKED");
      expect((await strict.api("GET", `/api/v1/app/${appId}/endpoint`)).body.data).toHaveLength(0);
    });

    it("refuses metadata, private and unspecified addresses at save time", async () => {
      const appId = await createApp(strict, "metadata");
      for (const url of BLOCKED_AT_SAVE) {
        const res = await strict.api("POST", `/api/v1/app/${appId}/endpoint`, { url });
        expect({ url, status: res.status, code: res.body?.code }).toEqual({ url, status: 422, code: "E_SSRF_BLOCKED" });
      }
      // An allowlist for loopback does not open the metadata service.
      const app2 = await createApp(allowed, "metadata");
      const res = await allowed.api("POST", `/api/v1/app/${app2}/endpoint`, { url: "http://169.254.169.254/latest/meta-data/" });
      expect(res.status).toBe(422);
      expect(res.body.code).toBe("E_SSRF_BLOCKED");
    });

    it("refuses to move an existing endpoint onto a blocked address", async () => {
      const appId = await createApp(strict, "move");
      const ep = await createEndpoint(strict, appId, { url: `http://localhost:${port}/named` });
      const res = await strict.api("PATCH", `/api/v1/app/${appId}/endpoint/${ep.id}`, { url: "http://169.254.169.254/" });
      expect(res.status).toBe(422);
      expect(res.body.code).toBe("E_SSRF_BLOCKED");
      const put = await strict.api("PUT", `/api/v1/app/${appId}/endpoint/${ep.id}`, { url: `http://127.0.0.1:${port}/` });
      expect(put.status).toBe(422);
      expect(put.body.code).toBe("E_SSRF_BLOCKED");
    });

    it("accepts a host name at save time but refuses to connect when it resolves to loopback", async () => {
      const appId = await createApp(strict, "named");
      const ep = await createEndpoint(strict, appId, { url: `http://localhost:${port}/named` });
      expect(ep.url).toBe(`http://localhost:${port}/named`);
      const msg = await publish(strict, appId, { payload: { to: "localhost" } });
      await strict.hw.worker.runUntilIdle();
      const attempts = await attemptsOf(strict, appId, msg.id);
      expect(attempts).toHaveLength(1);
      expect(attempts[0]).toMatchObject({ status: 2, responseStatusCode: 0, errorCode: "E_SSRF_BLOCKED" });
      expect(receiver.received).toHaveLength(0);
    });

    it("delivers to the same name once the operator allowlists 127.0.0.0/8", async () => {
      const appId = await createApp(allowed, "named");
      await createEndpoint(allowed, appId, { url: `http://localhost:${port}/allowed` });
      const msg = await publish(allowed, appId, { payload: { to: "localhost" } });
      await allowed.hw.worker.runUntilIdle();
      const attempts = await attemptsOf(allowed, appId, msg.id);
      expect(attempts.map((a) => [a.status, a.errorCode])).toEqual([[0, null]]);
      expect(receiver.received.map((r) => r.url)).toEqual(["/allowed"]);
      expect(receiver.received[0]!.headers.host).toBe(`localhost:${port}`);
    });
  });
}
