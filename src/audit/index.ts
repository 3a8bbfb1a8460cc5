import { createHash } from "node:crypto";
import { newId } from "../ids/index.js";
import type { Logger } from "../logger/index.js";
import type { Db, Store } from "../store/index.js";
import type { AuditLogTable } from "../store/schema.js";

/** The advisory lock that orders appends to the hash chain across nodes (any constant of ours). */
const AUDIT_CHAIN_LOCK = 7224120012;

export const GENESIS_HASH = "0".repeat(64);

export interface AuditEntry {
  orgId: string;
  tokenId: string | null;
  tokenName: string | null;
  /** `METHOD route-pattern`, e.g. `DELETE /api/v1/auth/token/:token_id`. */
  action: string;
  resourceId: string | null;
  status: number;
  clientIp: string | null;
  at: number;
}

type Row = AuditLogTable;

/** The canonical text a row's hash covers: fixed field order, JSON-escaped values. */
function canonical(r: Omit<Row, "hash">): string {
  return JSON.stringify([String(r.seq), r.id, String(r.at), r.org_id, r.token_id, r.token_name, r.action, r.resource_id, Number(r.status), r.client_ip]);
}

export function entryHash(prevHash: string, r: Omit<Row, "hash" | "prev_hash">): string {
  return createHash("sha256").update(prevHash).update("\n").update(canonical({ ...r, prev_hash: prevHash })).digest("hex");
}

/**
 * Appends entries to the hash chain. Appends are serialised: in this process by a promise chain,
 * across PostgreSQL nodes by a transaction-scoped advisory lock, so two writers never chain onto
 * the same previous row. Written after the change committed (from the API edge); a crash between
 * the two loses that entry, never the change.
 */
export class AuditLog {
  readonly #store: Store;
  readonly #logger: Logger;
  #tail: Promise<void> = Promise.resolve();

  constructor(store: Store, logger: Logger) {
    this.#store = store;
    this.#logger = logger;
  }

  append(e: AuditEntry): Promise<void> {
    const run = this.#tail.then(() => this.#write(e));
    this.#tail = run.catch((err: unknown) => this.#logger.error({ err, action: e.action }, "could not write an audit log entry"));
    return run;
  }

  /** Resolves when every entry appended so far is written (tests, shutdown). */
  flush(): Promise<void> {
    return this.#tail;
  }

  async #write(e: AuditEntry): Promise<void> {
    await this.#store.db.transaction().execute(async (trx) => {
      await this.#store.serializeAppends(trx, AUDIT_CHAIN_LOCK);
      const last = await trx.selectFrom("audit_log").select(["seq", "hash"]).orderBy("seq", "desc").limit(1).executeTakeFirst();
      const body = {
        seq: last ? Number(last.seq) + 1 : 1,
        id: newId("aud"),
        at: e.at,
        org_id: e.orgId,
        token_id: e.tokenId,
        token_name: e.tokenName,
        action: e.action,
        resource_id: e.resourceId,
        status: e.status,
        client_ip: e.clientIp,
      };
      const prev = last?.hash ?? GENESIS_HASH;
      await trx.insertInto("audit_log").values({ ...body, prev_hash: prev, hash: entryHash(prev, body) }).execute();
    });
  }
}

export interface AuditFilter {
  orgId?: string | undefined;
  tokenId?: string | undefined;
  action?: string | undefined;
  since?: number | undefined;
  until?: number | undefined;
  limit?: number | undefined;
}

/** Entries, newest first. */
export async function listAudit(db: Db, f: AuditFilter): Promise<Row[]> {
  let q = db.selectFrom("audit_log").selectAll().orderBy("seq", "desc").limit(Math.min(f.limit ?? 100, 1000));
  if (f.orgId !== undefined) q = q.where("org_id", "=", f.orgId);
  if (f.tokenId !== undefined) q = q.where("token_id", "=", f.tokenId);
  if (f.action !== undefined) q = q.where("action", "like", `%${f.action.replace(/[%_\\]/g, "")}%`);
  if (f.since !== undefined) q = q.where("at", ">=", f.since);
  if (f.until !== undefined) q = q.where("at", "<", f.until);
  return (await q.execute()).map((r) => ({ ...r, seq: Number(r.seq), at: Number(r.at), status: Number(r.status) }));
}

/**
 * Walks the whole chain in order. An edited row no longer matches its hash; a deleted row leaves
 * a gap in `seq` and the next row's `prev_hash` pointing at nothing. (Deleting the newest rows
 * leaves a shorter valid chain: compare `entries` with a count kept elsewhere to catch that.)
 */
export async function verifyAudit(db: Db): Promise<{ ok: boolean; entries: number; problems: string[] }> {
  const problems: string[] = [];
  let prev = GENESIS_HASH;
  let expectSeq = 1;
  let entries = 0;
  for (let after = 0; ; ) {
    const rows = await db.selectFrom("audit_log").selectAll().where("seq", ">", after).orderBy("seq").limit(1000).execute();
    if (rows.length === 0) break;
    for (const r of rows) {
      entries++;
      const seq = Number(r.seq);
      if (seq !== expectSeq) problems.push(`entries ${expectSeq}..${seq - 1} are missing (deleted) before entry ${seq} (${r.id})`);
      if (r.prev_hash !== prev) problems.push(`entry ${seq} (${r.id}) does not follow the entry before it (a row before it was deleted or edited)`);
      const { hash, prev_hash, ...body } = r;
      if (entryHash(prev_hash, { ...body, seq, at: Number(body.at), status: Number(body.status) }) !== hash) problems.push(`entry ${seq} (${r.id}) was edited: its content no longer matches its hash`);
      prev = hash;
      expectSeq = seq + 1;
      after = seq;
    }
  }
  return { ok: problems.length === 0, entries, problems };
}
