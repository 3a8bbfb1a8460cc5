import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/index.js";
import { orgList, tokenCreate, tokenList, tokenRevoke } from "../../src/cli/org.js";
import { DIALECTS } from "../helpers/dialects.js";
import { startTestServer, testConfigInput, type TestServer } from "../helpers/server.js";

async function as(t: TestServer, token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(t.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, text, headers: res.headers };
}

function capture(): { write(s: string): boolean; text: string } {
  return {
    text: "",
    write(s: string) {
      this.text += s;
      return true;
    },
  };
}

for (const dialect of DIALECTS) {
  describe(`API tokens: names, scopes, last use, list and revoke (${dialect})`, () => {
    let t: TestServer;
    let appA: any;
    let appB: any;
    beforeAll(async () => {
      t = await startTestServer(dialect);
      appA = (await t.api("POST", "/api/v1/app", { name: "A", uid: "app-a" })).body;
      appB = (await t.api("POST", "/api/v1/app", { name: "B", uid: "app-b" })).body;
    });
    afterAll(async () => {
      await t?.stop();
    });

    it("creates a token shown once (no-store), lists it by name with times and never its value", async () => {
      const created = await t.api("POST", "/api/v1/auth/token", { name: "ci deploys" });
      expect(created.status, created.text).toBe(201);
      expect(created.body).toMatchObject({ name: "ci deploys", scope: "full", appId: null, lastUsedAt: null });
      expect(created.body.id).toMatch(/^tok_/);
      expect(created.body.token).toMatch(/^hwk_/);
      const res = await fetch(`${t.url}/api/v1/auth/token`, { method: "POST", headers: { authorization: `Bearer ${t.token}`, "content-type": "application/json" }, body: JSON.stringify({ name: "x" }) });
      expect(res.headers.get("cache-control")).toBe("no-store");

      expect((await as(t, created.body.token, "GET", "/api/v1/app")).status).toBe(200);
      const list = await t.api("GET", "/api/v1/auth/token");
      expect(list.status).toBe(200);
      const mine = list.body.data.find((x: any) => x.id === created.body.id);
      expect(mine).toMatchObject({ name: "ci deploys", scope: "full" });
      expect(Date.parse(mine.createdAt)).toBeGreaterThan(0);
      // Its first use is recorded (later ones at most once a minute).
      expect(Date.parse(mine.lastUsedAt)).toBeGreaterThanOrEqual(Date.parse(mine.createdAt));
      const admin = list.body.data.find((x: any) => x.name === "admin");
      expect(admin.lastUsedAt).not.toBeNull();
      expect(list.text).not.toContain(created.body.token);
      expect(list.text).not.toContain(t.token);
      expect(list.text).not.toMatch(/[0-9a-f]{64}/); // no hashes either
    });

    it("a read-only token reads and cannot write", async () => {
      const ro = (await t.api("POST", "/api/v1/auth/token", { name: "dashboard", scope: "read-only" })).body;
      expect(ro.scope).toBe("read-only");
      expect((await as(t, ro.token, "GET", `/api/v1/app/${appA.id}`)).status).toBe(200);
      const write = await as(t, ro.token, "POST", "/api/v1/app", { name: "nope" });
      expect(write.status).toBe(403);
      expect(write.body).toEqual({ code: "E_FORBIDDEN", detail: "This token is read-only" });
      expect((await as(t, ro.token, "DELETE", `/api/v1/app/${appA.id}`)).status).toBe(403);
      // Nor can it mint itself a wider token.
      expect((await as(t, ro.token, "POST", "/api/v1/auth/token", { name: "wider" })).status).toBe(403);
      expect((await t.api("GET", `/api/v1/app/${appA.id}`)).status).toBe(200);
    });

    it("an application token reaches its application (by id or uid) and nothing else", async () => {
      const scoped = await t.api("POST", "/api/v1/auth/token", { name: "portal", app: "app-a" });
      expect(scoped.status, scoped.text).toBe(201);
      expect(scoped.body.appId).toBe(appA.id);
      const tok = scoped.body.token as string;
      expect((await as(t, tok, "GET", `/api/v1/app/${appA.id}`)).status).toBe(200);
      expect((await as(t, tok, "GET", "/api/v1/app/app-a/endpoint")).status).toBe(200);
      expect((await as(t, tok, "POST", "/api/v1/app/app-a/msg", { eventType: "a.b", payload: {} })).status).toBe(202);
      for (const path of [`/api/v1/app/${appB.id}`, "/api/v1/app/app-b/endpoint", "/api/v1/app", "/api/v1/bucket", "/api/v1/auth/token"]) {
        const res = await as(t, tok, "GET", path);
        expect(res.status, path).toBe(403);
        expect(res.body.code).toBe("E_FORBIDDEN");
      }
      expect((await as(t, tok, "POST", "/api/v1/auth/token", { name: "escape" })).status).toBe(403);
      expect((await t.api("POST", "/api/v1/auth/token", { name: "x", app: "app-nope" })).status).toBe(404);
    });

    it("revokes a token at once; another organisation cannot see or revoke it", async () => {
      const victim = (await t.api("POST", "/api/v1/auth/token", { name: "leaked" })).body;
      expect((await as(t, victim.token, "GET", "/api/v1/app")).status).toBe(200);
      const other = await t.newOrgToken(`other-${dialect}`);
      expect((await as(t, other, "DELETE", `/api/v1/auth/token/${victim.id}`)).status).toBe(404);
      const theirs = await as(t, other, "GET", "/api/v1/auth/token");
      expect(theirs.text).not.toContain(victim.id);
      expect((await as(t, victim.token, "GET", "/api/v1/app")).status).toBe(200);

      expect((await t.api("DELETE", `/api/v1/auth/token/${victim.id}`)).status).toBe(204);
      expect((await as(t, victim.token, "GET", "/api/v1/app")).status).toBe(401);
      expect((await t.api("DELETE", `/api/v1/auth/token/${victim.id}`)).status).toBe(404);
      expect((await t.api("GET", "/api/v1/auth/token")).text).not.toContain(victim.id);
    });

    it("refuses hostile token bodies with a clear 422", async () => {
      for (const body of [{}, { name: "" }, { name: "x".repeat(101) }, { name: "a\u0000b" }, { name: "ok", scope: "admin" }, { name: "ok", extra: 1 }, { name: { __proto__: { x: 1 } } }]) {
        const res = await t.api("POST", "/api/v1/auth/token", body);
        expect(res.status, JSON.stringify(body)).toBe(422);
      }
      const proto = await t.api("POST", "/api/v1/auth/token", JSON.parse('{"name":"__proto__","__proto__":{"scope":"full"}}'));
      // A __proto__ key is refused by the JSON body parser itself (400, never a polluted object).
      expect(proto.status).toBe(400);
      expect(proto.body.code).toMatch(/^E_/);
      const named = await t.api("POST", "/api/v1/auth/token", { name: "constructor" });
      expect(named.status).toBe(201);
      expect(named.body.name).toBe("constructor");
    });

    it("CLI: org list, token create --scope/--app, token list, token revoke", async () => {
      const config = loadConfig({ ...testConfigInput(dialect, t.dataDir, t.schema), logLevel: "silent" }, {});
      const orgs = capture();
      await orgList(config, orgs);
      expect(orgs.text.split("\n")[0]).toMatch(/^ID\s+NAME\s+TOKENS\s+CREATED$/);
      expect(orgs.text).toMatch(/org_\S+\s+default\s+\d+\s+\d{4}-/);

      const created = capture();
      await tokenCreate(config, "default", { name: "reporting", scope: "read-only", app: "app-b" }, created);
      const value = created.text.trim();
      expect(value).toMatch(/^hwk_/);
      expect((await as(t, value, "GET", "/api/v1/app/app-b")).status).toBe(200);
      expect((await as(t, value, "POST", "/api/v1/app/app-b/msg", { eventType: "a", payload: {} })).status).toBe(403);

      const listed = capture();
      await tokenList(config, "default", listed);
      const line = listed.text.split("\n").find((l) => l.includes("reporting"))!;
      expect(line).toMatch(new RegExp(`^tok_\\S+\\s+default\\s+reporting\\s+read-only\\s+${appB.id}\\s+\\d{4}-\\S+\\s+\\d{4}-`));
      expect(listed.text).not.toContain(value);
      expect(listed.text).not.toContain(t.token);

      const id = line.split(/\s+/)[0]!;
      const revoked = capture();
      await tokenRevoke(config, id, revoked);
      expect(revoked.text).toBe(`revoked ${id}\n`);
      await expect(tokenRevoke(config, id, capture())).rejects.toThrow(`No token with id ${id}`);
      // Both CLI changes are in the audit log: who is the OS user, what and which token; never the value.
      const audit = await t.api("GET", "/api/v1/audit?limit=250");
      expect(audit.status, audit.text).toBe(200);
      const cli = (audit.body.data as { action: string; resourceId: string; tokenName: string; tokenId: string | null }[]).filter((e) => e.action.startsWith("CLI token"));
      expect(cli.map((e) => [e.action, e.resourceId])).toEqual(expect.arrayContaining([["CLI token create", id], ["CLI token revoke", id]]));
      for (const e of cli) {
        expect(e.tokenName).toMatch(/^cli:/);
        expect(e.tokenId).toBeNull();
      }
      expect(audit.text).not.toContain(value);
      await expect(tokenCreate(config, "nope", {}, capture())).rejects.toThrow('No organisation named "nope"');
      await expect(tokenCreate(config, "default", { scope: "root" }, capture())).rejects.toThrow("--scope must be one of full, read-only");
    });
  });
}
