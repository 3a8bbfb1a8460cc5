import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { DIALECTS } from "../helpers/dialects.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const HDR = { "x-hookwarden-console": "1" };

for (const dialect of DIALECTS) {
  describe(`console session expiry (${dialect})`, () => {
    const clock = new FakeClock();
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(dialect, { consoleSessionTtl: "10m" }, { clock });
    });
    afterAll(async () => {
      await server?.stop();
    });

    it("a session cookie stops working when its time is up, while the token still works", async () => {
      const res = await fetch(`${server.url}/console/api/session`, { method: "POST", headers: { ...HDR, "content-type": "application/json" }, body: JSON.stringify({ token: server.token }) });
      expect(res.status).toBe(201);
      expect(res.headers.get("set-cookie")).toContain("Max-Age=600;");
      const cookie = (res.headers.get("set-cookie") ?? "").split(";")[0]!;
      const apps = () => fetch(`${server.url}/api/v1/app`, { headers: { cookie, ...HDR } });
      expect((await apps()).status).toBe(200);
      clock.advance(9 * 60_000);
      expect((await apps()).status).toBe(200);
      clock.advance(60_000);
      const expired = await apps();
      expect(expired.status).toBe(401);
      expect(await expired.json()).toMatchObject({ code: "E_UNAUTHORIZED" });
      expect((await fetch(`${server.url}/console/api/session`, { headers: { cookie, ...HDR } })).status).toBe(401);
      expect((await server.api("GET", "/api/v1/app")).status).toBe(200);
    });
  });
}
