import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../../test/helpers/dialects.js";
import { insertApp, openTestStore, type TestStore } from "../../test/helpers/store.js";
import type { ApplicationRow } from "./index.js";
import type { Context } from "../context/index.js";
import { HookwardenError, type ErrorCode } from "../errors/index.js";
import { createAppSecret, deleteAppSecret, listAppSecrets, loadAppSecrets, replaceAppSecret } from "./vault.js";
import { SecretValue } from "../vault/secret-value.js";

async function rejects(code: ErrorCode, status: number, p: Promise<unknown>): Promise<HookwardenError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HookwardenError);
  expect((err as HookwardenError).code, (err as Error).message).toBe(code);
  expect((err as HookwardenError).status).toBe(status);
  return err as HookwardenError;
}

const reveal = async (ctx: Context, app: ApplicationRow, name: string) => (await loadAppSecrets(ctx, app.id, [name])).get(name)?.reveal();

for (const dialect of DIALECTS) {
  describe(`vault secrets (${dialect})`, () => {
    let t: TestStore;
    let ctx: Context;
    let app: ApplicationRow;
    let other: ApplicationRow;

    beforeAll(async () => {
      t = await openTestStore(dialect);
      ctx = t.ctx;
      app = await insertApp(ctx.store.db, "crm");
      other = await insertApp(ctx.store.db, "other");
    });
    afterAll(async () => {
      await t?.drop();
    });

    it("accepts names of [A-Z][A-Z0-9_]{0,63} and refuses anything else", async () => {
      for (const name of ["A", "CRM_TOKEN", "K9", `A${"_".repeat(63)}`]) {
        expect((await createAppSecret(ctx, app, name, new SecretValue("v"))).name).toBe(name);
      }
      for (const name of ["", "crm_token", "Crm", "9LIVES", "_X", "A-B", "A.B", "A B", `A${"B".repeat(64)}`, "É"]) {
        const e = await rejects("E_VALIDATION", 422, createAppSecret(ctx, app, name, new SecretValue("v")));
        expect(e.validation?.[0]?.loc).toEqual(["body", "name"]);
      }
      const names = (await listAppSecrets(ctx, app)).map((s) => s.name);
      expect(names).toEqual(["A", `A${"_".repeat(63)}`, "CRM_TOKEN", "K9"].sort());
    });

    it("refuses values over 2000 characters with E_SECRET_TOO_LONG, without echoing them", async () => {
      const max = "x".repeat(2000);
      await createAppSecret(ctx, app, "MAX_LEN", new SecretValue(max));
      expect(await reveal(ctx, app, "MAX_LEN")).toBe(max);
      const e = await rejects("E_SECRET_TOO_LONG", 422, createAppSecret(ctx, app, "TOO_LONG", new SecretValue(`${"y".repeat(2000)}z`)));
      expect(e.message).toContain("2000");
      expect(JSON.stringify({ m: e.message, v: e.validation })).not.toContain("yyyy");
      await rejects("E_SECRET_TOO_LONG", 422, replaceAppSecret(ctx, app, "MAX_LEN", new SecretValue("y".repeat(2001))));
      expect(await reveal(ctx, app, "MAX_LEN")).toBe(max);
      await rejects("E_VALIDATION", 422, createAppSecret(ctx, app, "EMPTY", new SecretValue("")));
    });

    it("takes the length limit from the configuration", async () => {
      const small: Context = { ...ctx, config: { ...ctx.config, vaultMaxValueLength: 10 } };
      await createAppSecret(small, app, "SMALL_OK", new SecretValue("0123456789"));
      await rejects("E_SECRET_TOO_LONG", 422, createAppSecret(small, app, "SMALL_BAD", new SecretValue("0123456789a")));
    });

    it("refuses a duplicate name with 409 and keeps the first value; other apps are separate", async () => {
      await createAppSecret(ctx, app, "DUP", new SecretValue("first"));
      const e = await rejects("E_CONFLICT", 409, createAppSecret(ctx, app, "DUP", new SecretValue("second")));
      expect(e.message).not.toContain("second");
      expect(await reveal(ctx, app, "DUP")).toBe("first");
      await createAppSecret(ctx, other, "DUP", new SecretValue("other app"));
      expect(await reveal(ctx, other, "DUP")).toBe("other app");
      expect(await reveal(ctx, app, "DUP")).toBe("first");
    });

    it("lists names and timestamps only; replace keeps createdAt; delete removes", async () => {
      const clock = ctx.clock as unknown as { advance(ms: number): void; now(): number };
      const created = await createAppSecret(ctx, app, "LIFECYCLE", new SecretValue("v1-value"));
      clock.advance(5_000);
      const replaced = await replaceAppSecret(ctx, app, "LIFECYCLE", new SecretValue("v2-value"));
      expect(replaced).toEqual({ name: "LIFECYCLE", createdAt: created.createdAt, updatedAt: created.createdAt + 5_000 });
      expect(await reveal(ctx, app, "LIFECYCLE")).toBe("v2-value");
      const listed = await listAppSecrets(ctx, app);
      expect(listed.find((s) => s.name === "LIFECYCLE")).toEqual(replaced);
      expect(JSON.stringify(listed)).not.toMatch(/v[12]-value|hw1:/);
      await deleteAppSecret(ctx, app, "LIFECYCLE");
      expect(await reveal(ctx, app, "LIFECYCLE")).toBeUndefined();
      await rejects("E_NOT_FOUND", 404, deleteAppSecret(ctx, app, "LIFECYCLE"));
      await rejects("E_NOT_FOUND", 404, replaceAppSecret(ctx, app, "LIFECYCLE", new SecretValue("x")));
      // Another application's secret of the same name is not reachable through this one.
      await rejects("E_NOT_FOUND", 404, deleteAppSecret(ctx, other, "K9"));
    });

    it("a value_enc copied into another row (other name or other app) fails to decrypt", async () => {
      await createAppSecret(ctx, app, "SOURCE", new SecretValue("only-for-source"));
      await createAppSecret(ctx, app, "TARGET", new SecretValue("target-value"));
      await createAppSecret(ctx, other, "SOURCE", new SecretValue("other-source"));
      const { value_enc } = await ctx.store.db.selectFrom("vault_secrets").select("value_enc").where("app_id", "=", app.id).where("name", "=", "SOURCE").executeTakeFirstOrThrow();

      await ctx.store.db.updateTable("vault_secrets").set({ value_enc }).where("app_id", "=", app.id).where("name", "=", "TARGET").execute();
      const swapped = await rejects("E_MASTER_KEY", 500, loadAppSecrets(ctx, app.id, ["TARGET"]));
      expect(swapped.message).not.toContain("only-for-source");

      await ctx.store.db.updateTable("vault_secrets").set({ value_enc }).where("app_id", "=", other.id).where("name", "=", "SOURCE").execute();
      await rejects("E_MASTER_KEY", 500, loadAppSecrets(ctx, other.id, ["SOURCE"]));
      // The original row still opens.
      expect(await reveal(ctx, app, "SOURCE")).toBe("only-for-source");
    });

    it("stores no byte of the value in the database", async () => {
      const canary = "vault-canary-7f3a9c2e-b41d";
      await createAppSecret(ctx, app, "CANARY", new SecretValue(canary));
      await replaceAppSecret(ctx, app, "CANARY", new SecretValue(`${canary}-v2`));
      const forms = [canary, Buffer.from(canary).toString("base64").slice(0, 20), Buffer.from(canary).toString("hex").slice(0, 20)];
      if (dialect === "sqlite") {
        await sql`pragma wal_checkpoint(TRUNCATE)`.execute(ctx.store.db);
        const bytes = readdirSync(t.dataDir)
          .filter((f) => f.startsWith("hookwarden.db"))
          .map((f) => readFileSync(join(t.dataDir, f)).toString("latin1"))
          .join("");
        expect(bytes).toContain("CANARY");
        for (const f of forms) expect(bytes).not.toContain(f);
      } else {
        const rows = await sql<{ row: string }>`select t::text as row from vault_secrets t`.execute(ctx.store.db);
        const dump = rows.rows.map((r) => r.row).join("\n");
        expect(dump).toContain("CANARY");
        for (const f of forms) expect(dump).not.toContain(f);
      }
      expect(await reveal(ctx, app, "CANARY")).toBe(`${canary}-v2`);
    });
  });
}
