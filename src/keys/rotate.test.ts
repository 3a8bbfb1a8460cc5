import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../../test/helpers/dialects.js";
import { keyIdsInUse, readAllSealed, sealedCounts, seedSealedRows } from "../../test/helpers/sealed-rows.js";
import { insertApp, openTestStore, type TestStore } from "../../test/helpers/store.js";
import type { Context } from "../context/index.js";
import { HookwardenError } from "../errors/index.js";
import { Keyring, keyId } from "../vault/envelope.js";
import { resealAll, type RotationReport } from "./rotate.js";
import { SEALED_COLUMNS } from "./sealed-columns.js";

/** More than one 200-row chunk, so pagination and resuming mid-column are exercised. */
const SIGNING_SECRETS = 230;

const byColumn = (reports: RotationReport[]) => Object.fromEntries(reports.map((r) => [`${r.table}.${r.column}`, [r.resealed, r.alreadyCurrent]]));

for (const dialect of DIALECTS) {
  describe(`master key rotation (${dialect})`, () => {
    let t: TestStore;
    const keyA = randomBytes(32);
    const keyB = randomBytes(32);
    /** The context as a server holding only key A sees it. */
    let ctxA: Context;
    const withOnly = (key: Buffer, previous: Buffer[] = []): Context => ({ ...t.ctx, keyring: new Keyring(key, previous) });
    let before: Map<string, string>;
    let counts: Map<string, number>;

    beforeAll(async () => {
      t = await openTestStore(dialect);
      ctxA = withOnly(keyA);
      await seedSealedRows(ctxA, [await insertApp(t.store.db, "a"), await insertApp(t.store.db, "b")], SIGNING_SECRETS);
      before = await readAllSealed(ctxA);
      counts = await sealedCounts(t.store.db);
    });
    afterAll(async () => {
      await t?.drop();
    });

    it("seeds at least one row for every sealed column, so each is rotated below", () => {
      for (const col of SEALED_COLUMNS) expect(counts.get(`${col.table}.${col.column}`), `seed a ${col.table} row in test/helpers/sealed-rows.ts`).toBeGreaterThan(0);
      expect(counts.get("endpoint_secrets.secret_enc")).toBe(SIGNING_SECRETS);
    });

    it("lists every *_enc column of the migrated schema in SEALED_COLUMNS", async () => {
      const tables = await t.store.db.introspection.getTables();
      const inSchema = tables.filter((tb) => dialect === "sqlite" || tb.schema === t.schema);
      expect(inSchema.map((tb) => tb.name)).toContain("vault_secrets");
      const encColumns = inSchema.flatMap((tb) => tb.columns.filter((c) => c.name.endsWith("_enc")).map((c) => `${tb.name}.${c.name}`)).sort();
      expect(encColumns).toEqual(SEALED_COLUMNS.map((c) => `${c.table}.${c.column}`).sort());
    });

    it("refuses to rotate without the key the rows were sealed with, and changes nothing", async () => {
      const err = await resealAll(t.store.db, new Keyring(keyB)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(HookwardenError);
      expect((err as HookwardenError).code).toBe("E_MASTER_KEY");
      expect(await readAllSealed(ctxA)).toEqual(before);
    });

    it("resumes an interrupted rotation without losing anything", async () => {
      const ring = new Keyring(keyB, [keyA]);
      const crash = new Error("killed after the first chunk");
      await expect(
        resealAll(t.store.db, ring, () => {
          throw crash;
        }),
      ).rejects.toBe(crash);
      // Half-way: the first chunk is under B, the rest still under A; a server with both keys reads all.
      const kids = await keyIdsInUse(t.store.db);
      expect(kids.get("endpoint_secrets.secret_enc")).toEqual(new Set([keyId(keyA), keyId(keyB)]));
      expect(kids.get("vault_secrets.value_enc")).toEqual(new Set([keyId(keyA)]));
      expect(await readAllSealed(withOnly(keyB, [keyA]))).toEqual(before);

      const reports = await resealAll(t.store.db, ring);
      expect(byColumn(reports)).toEqual({
        ...Object.fromEntries([...counts].map(([col, n]) => [col, [n, 0]])),
        "endpoint_secrets.secret_enc": [SIGNING_SECRETS - 200, 200],
      });
    });

    it("leaves every value readable under the new key alone, with the same plaintext", async () => {
      const kids = await keyIdsInUse(t.store.db);
      for (const col of SEALED_COLUMNS) expect(kids.get(`${col.table}.${col.column}`), col.column).toEqual(new Set([keyId(keyB)]));
      expect(await readAllSealed(withOnly(keyB))).toEqual(before);
      // And a server that only has the old key can no longer read them.
      await expect(readAllSealed(ctxA)).rejects.toMatchObject({ code: "E_MASTER_KEY" });
    });

    it("re-seals nothing when run again", async () => {
      const progress: RotationReport[] = [];
      const reports = await resealAll(t.store.db, new Keyring(keyB, [keyA]), (r) => progress.push({ ...r }));
      expect(byColumn(reports)).toEqual(Object.fromEntries([...counts].map(([col, n]) => [col, [0, n]])));
      expect(progress.length).toBeGreaterThanOrEqual(SEALED_COLUMNS.length + 1);
      expect(await readAllSealed(withOnly(keyB))).toEqual(before);
    });

    it("rotates again to a third key, keeping values written between rotations", async () => {
      const keyC = randomBytes(32);
      const ctxB = withOnly(keyB);
      const app = await insertApp(t.store.db, "late");
      await seedSealedRows(ctxB, [app, await insertApp(t.store.db, "late2")], 3);
      const now = await readAllSealed(ctxB);
      expect(now.size).toBeGreaterThan(before.size);
      await resealAll(t.store.db, new Keyring(keyC, [keyA, keyB]));
      expect(await readAllSealed(withOnly(keyC))).toEqual(now);
    });
  });
}
