import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../helpers/dialects.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const HDR = { "x-hookwarden-console": "1" };

/**
 * A console session is opened with an API token and must reach exactly what that token reaches:
 * signing in with a read-only, an application-scoped or an app-portal token cannot yield an
 * organisation-wide session.
 */
for (const dialect of DIALECTS) {
  describe(`console sessions keep their token's scope (${dialect})`, () => {
    let server: TestServer;
    let appA: { id: string };
    let appB: { id: string };
    beforeAll(async () => {
      server = await startTestServer(dialect);
      appA = (await server.api("POST", "/api/v1/app", { name: "A", uid: "scope-a" })).body;
      appB = (await server.api("POST", "/api/v1/app", { name: "B", uid: "scope-b" })).body;
    });
    afterAll(async () => {
      await server?.stop();
    });

    async function signIn(token: string, app?: string): Promise<{ status: number; call: (method: string, path: string, body?: unknown) => Promise<number> }> {
      const res = await fetch(`${server.url}/console/api/session`, {
        method: "POST",
        headers: { ...HDR, "content-type": "application/json" },
        body: JSON.stringify(app === undefined ? { token } : { token, app }),
      });
      const cookie = (res.headers.get("set-cookie") ?? "").split(";")[0]!;
      const call = async (method: string, path: string, body?: unknown) =>
        (
          await fetch(`${server.url}${path}`, {
            method,
            headers: { cookie, ...HDR, ...(body === undefined ? {} : { "content-type": "application/json" }) },
            ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          })
        ).status;
      return { status: res.status, call };
    }

    it("a read-only token's session reads and cannot write", async () => {
      const ro = (await server.api("POST", "/api/v1/auth/token", { name: "viewer", scope: "read-only" })).body.token as string;
      const s = await signIn(ro);
      expect(s.status).toBe(201);
      expect(await s.call("GET", "/api/v1/app")).toBe(200);
      expect(await s.call("POST", "/api/v1/app", { name: "nope" })).toBe(403);
    });

    it("an application token's session stays in its application, whatever the sign-in names", async () => {
      const scoped = (await server.api("POST", "/api/v1/auth/token", { name: "team-a", app: "scope-a" })).body.token as string;
      const s = await signIn(scoped);
      expect(s.status).toBe(201);
      expect(await s.call("GET", `/api/v1/app/${appA.id}/endpoint`)).toBe(200);
      expect(await s.call("GET", `/api/v1/app/${appB.id}/endpoint`)).toBe(404);
      expect(await s.call("GET", "/api/v1/app")).toBe(404);
      expect((await signIn(scoped, appB.id)).status).toBe(404);
    });

    it("an app-portal token's session reaches its application's portal routes only", async () => {
      const portal = (await server.api("POST", `/api/v1/auth/app-portal-access/${appA.id}`, {})).body.token as string;
      const s = await signIn(portal);
      expect(s.status).toBe(201);
      expect(await s.call("GET", `/api/v1/app/${appA.id}/endpoint`)).toBe(200);
      expect(await s.call("GET", `/api/v1/app/${appB.id}/endpoint`)).toBe(404);
      expect(await s.call("POST", `/api/v1/app/${appA.id}/msg`, { eventType: "a.b", payload: {} })).toBe(403);
    });

    it("a revoked or unknown token opens no session", async () => {
      const created = (await server.api("POST", "/api/v1/auth/token", { name: "short-lived" })).body as { id: string; token: string };
      expect((await server.api("DELETE", `/api/v1/auth/token/${created.id}`)).status).toBe(204);
      expect((await signIn(created.token)).status).toBe(401);
      expect((await signIn("hwk_not-a-token")).status).toBe(401);
    });
  });
}
