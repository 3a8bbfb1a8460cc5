import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../../test/helpers/dialects.js";
import { insertApp, openTestStore, type TestStore } from "../../test/helpers/store.js";
import type { ApplicationRow } from "../applications/index.js";
import type { Context } from "../context/index.js";
import { HookwardenError, type ErrorCode } from "../errors/index.js";
import { createAppSecret } from "../applications/vault.js";
import { SecretValue } from "../vault/secret-value.js";
import { checkIntegration, referencedSecrets, type Integration } from "./integration.js";

const URL_ = "https://crm.example.com/hooks";

function integration(over: Partial<Integration> = {}): Integration {
  return { template: null, auth: null, encryption: null, redactResponses: false, timeoutMs: null, ...over };
}

async function refused(code: ErrorCode, p: Promise<unknown>): Promise<HookwardenError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HookwardenError);
  expect((err as HookwardenError).code, (err as Error).message).toBe(code);
  expect((err as HookwardenError).status).toBe(422);
  return err as HookwardenError;
}

for (const dialect of DIALECTS) {
  describe(`checkIntegration (${dialect})`, () => {
    let t: TestStore;
    let ctx: Context;
    let app: ApplicationRow;

    beforeAll(async () => {
      t = await openTestStore(dialect, { allowPrivateNetworks: [] });
      ctx = t.ctx;
      app = await insertApp(ctx.store.db);
      await createAppSecret(ctx, app, "CRM_TOKEN", new SecretValue("tok"));
      await createAppSecret(ctx, app, "AES256", new SecretValue(randomBytes(32).toString("base64")));
      await createAppSecret(ctx, app, "AES128", new SecretValue(randomBytes(16).toString("base64")));
      await createAppSecret(ctx, app, "NOT_A_KEY", new SecretValue("hunter2"));
    });
    afterAll(async () => {
      await t?.drop();
    });

    it("accepts a complete integration and returns the compiled template", async () => {
      const i = integration({
        template: { url: "https://crm.example.com/api/{{payload.id}}?iv={{iv}}", headers: { "X-Token": "{{secrets.CRM_TOKEN}}" } },
        auth: { type: "basic", username: "alice", passwordSecret: "CRM_TOKEN" },
        encryption: { cipher: "aes-256-gcm", keySecret: "AES256", randomIv: true },
        timeoutMs: 5_000,
      });
      const compiled = await checkIntegration(ctx, app.id, URL_, i);
      expect(compiled?.origin).toBe("https://crm.example.com");
      expect([...referencedSecrets(i, compiled)].sort()).toEqual(["AES256", "CRM_TOKEN"]);
    });

    it("refuses a template that reads a secret the application does not have, with the position", async () => {
      const e = await refused("E_TEMPLATE_INVALID", checkIntegration(ctx, app.id, URL_, integration({ template: { body: { k: "x {{secrets.NOPE}}" } } })));
      expect(e.message).toBe("body.template.body.k: unknown secret NOPE: create it with POST /api/v1/app/{app_id}/secret first (at character 2)");
    });

    it("does not see another application's secrets", async () => {
      const other = await insertApp(ctx.store.db, "other");
      await refused("E_TEMPLATE_INVALID", checkIntegration(ctx, other.id, URL_, integration({ template: { body: "{{secrets.CRM_TOKEN}}" } })));
      await refused("E_TEMPLATE_INVALID", checkIntegration(ctx, other.id, URL_, integration({ auth: { type: "bearer", tokenSecret: "CRM_TOKEN" } })));
    });

    it("refuses auth that names an unknown secret, a bad header name or a basic username with ':'", async () => {
      await refused("E_TEMPLATE_INVALID", checkIntegration(ctx, app.id, URL_, integration({ auth: { type: "bearer", tokenSecret: "MISSING" } })));
      await refused("E_VALIDATION", checkIntegration(ctx, app.id, URL_, integration({ auth: { type: "header", name: "X Key", valueSecret: "CRM_TOKEN" } })));
      await refused("E_VALIDATION", checkIntegration(ctx, app.id, URL_, integration({ auth: { type: "basic", username: "a:b", passwordSecret: "CRM_TOKEN" } })));
      await refused("E_VALIDATION", checkIntegration(ctx, app.id, URL_, integration({ auth: { type: "basic", username: "a\r\nb", passwordSecret: "CRM_TOKEN" } })));
    });

    it("refuses AEAD ciphers without a random IV, but allows a zero IV for CBC", async () => {
      for (const cipher of ["aes-256-gcm", "chacha20-poly1305"] as const) {
        const e = await refused("E_ENCRYPTION_INVALID", checkIntegration(ctx, app.id, URL_, integration({ encryption: { cipher, keySecret: "AES256", randomIv: false } })));
        expect(e.validation?.[0]?.loc).toEqual(["body", "encryption", "randomIv"]);
      }
      await checkIntegration(ctx, app.id, URL_, integration({ encryption: { cipher: "aes-256-cbc", keySecret: "AES256", randomIv: false } }));
      await checkIntegration(ctx, app.id, URL_, integration({ encryption: { cipher: "aes-128-cbc", keySecret: "AES128", randomIv: false } }));
    });

    it("refuses a vault key of the wrong size for the cipher, or an unknown key secret", async () => {
      await refused("E_ENCRYPTION_INVALID", checkIntegration(ctx, app.id, URL_, integration({ encryption: { cipher: "aes-128-cbc", keySecret: "AES256", randomIv: true } })));
      await refused("E_ENCRYPTION_INVALID", checkIntegration(ctx, app.id, URL_, integration({ encryption: { cipher: "aes-256-gcm", keySecret: "AES128", randomIv: true } })));
      const e = await refused("E_ENCRYPTION_INVALID", checkIntegration(ctx, app.id, URL_, integration({ encryption: { cipher: "aes-256-gcm", keySecret: "NOT_A_KEY", randomIv: true } })));
      expect(e.message).not.toContain("hunter2");
      await refused("E_TEMPLATE_INVALID", checkIntegration(ctx, app.id, URL_, integration({ encryption: { cipher: "aes-256-gcm", keySecret: "MISSING", randomIv: true } })));
    });

    it("gives a template URL the endpoint URL's checks: no credentials, no blocked IP literal", async () => {
      const creds = await refused("E_VALIDATION", checkIntegration(ctx, app.id, URL_, integration({ template: { url: "https://user:pw@crm.example.com/x" } })));
      expect(creds.validation?.[0]?.loc).toEqual(["body", "template", "url"]);
      await refused("E_SSRF_BLOCKED", checkIntegration(ctx, app.id, URL_, integration({ template: { url: "http://169.254.169.254/latest/{{payload.p}}" } })));
      await refused("E_SSRF_BLOCKED", checkIntegration(ctx, app.id, URL_, integration({ template: { url: "http://127.0.0.1:8080/x" } })));
    });

    it("refuses a timeout outside 1 ms to 30 s", async () => {
      await refused("E_VALIDATION", checkIntegration(ctx, app.id, URL_, integration({ timeoutMs: 30_001 })));
      await refused("E_VALIDATION", checkIntegration(ctx, app.id, URL_, integration({ timeoutMs: 0 })));
      expect(await checkIntegration(ctx, app.id, URL_, integration({ timeoutMs: 30_000 }))).toBeUndefined();
    });
  });
}
