import { sql, type Kysely } from "kysely";
import type { Database, Db } from "../store/index.js";
import type { Keyring } from "../vault/envelope.js";
import { EXTRA_COLUMNS, SEALED_COLUMNS, type SealedColumn } from "./sealed-columns.js";

export interface RotationReport {
  table: string;
  column: string;
  resealed: number;
  alreadyCurrent: number;
}

const CHUNK = 200;

/**
 * Re-seals every stored secret under the keyring's current key. Rows already under it are
 * skipped, so an interrupted run is resumed by running it again. Each update is conditional on
 * the old ciphertext, so a value a live server changed meanwhile is never overwritten.
 */
export async function resealAll(db: Kysely<Database>, keyring: Keyring, onProgress: (r: RotationReport) => void = () => {}): Promise<RotationReport[]> {
  const reports: RotationReport[] = [];
  for (const col of SEALED_COLUMNS) reports.push(await resealColumn(db, keyring, col, onProgress));
  return reports;
}

async function resealColumn(db: Kysely<Database>, keyring: Keyring, col: SealedColumn, onProgress: (r: RotationReport) => void): Promise<RotationReport> {
  const report: RotationReport = { table: col.table, column: col.column, resealed: 0, alreadyCurrent: 0 };
  const columns = [...col.key, ...(EXTRA_COLUMNS[col.table] ?? []), col.column];
  let after: string[] | undefined;
  for (;;) {
    const keyTuple = sql.join(col.key.map((k) => sql.ref(k)));
    const rows = (
      await sql<Record<string, string>>`
        select ${sql.join(columns.map((c) => sql.ref(c)))} from ${sql.table(col.table)}
        where ${sql.ref(col.column)} is not null
        ${after ? sql`and (${keyTuple}) > (${sql.join(after)})` : sql``}
        order by ${keyTuple} limit ${CHUNK}`.execute(db)
    ).rows;
    if (rows.length === 0) break;
    const stale = rows.filter((r) => keyring.isStale(r[col.column]!));
    report.alreadyCurrent += rows.length - stale.length;
    if (stale.length > 0) {
      const run = async (trx: Db) => {
        for (const r of stale) {
          const aad = col.aad(r);
          const fresh = keyring.seal(keyring.open(r[col.column]!, aad), aad);
          let q = sql`update ${sql.table(col.table)} set ${sql.ref(col.column)} = ${fresh} where ${sql.ref(col.column)} = ${r[col.column]!}`;
          for (const k of col.key) q = sql`${q} and ${sql.ref(k)} = ${r[k]!}`;
          await q.execute(trx);
        }
      };
      await db.transaction().execute(run);
      report.resealed += stale.length;
    }
    after = col.key.map((k) => rows.at(-1)![k]!);
    onProgress(report);
  }
  return report;
}
