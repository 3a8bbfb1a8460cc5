import { listAudit, verifyAudit } from "../audit/index.js";
import type { Config } from "../config/index.js";
import { HookwardenError } from "../errors/index.js";
import { createLogger } from "../logger/index.js";
import { openStore, type Db } from "../store/index.js";
import { findOrgByName } from "../auth/tokens.js";

type Out = { write(text: string): unknown };

async function withDb<T>(config: Config, fn: (db: Db) => Promise<T>): Promise<T> {
  const store = await openStore(config, createLogger({ level: "warn", destination: process.stderr, format: "json" }));
  try {
    return await fn(store.db);
  } finally {
    await store.close();
  }
}

/** `hookwarden audit list [--org NAME] [--token ID] [--limit N]`: newest first, one JSON line each. */
export async function auditList(config: Config, opts: { org?: string; token?: string; limit?: number } = {}, out: Out = process.stdout): Promise<void> {
  const rows = await withDb(config, async (db) => {
    let orgId: string | undefined;
    if (opts.org !== undefined) {
      orgId = await findOrgByName(db, opts.org);
      if (!orgId) throw new HookwardenError("E_NOT_FOUND", 404, `No organisation named "${opts.org}"`);
    }
    return listAudit(db, { orgId, tokenId: opts.token, limit: opts.limit ?? 100 });
  });
  for (const r of rows) {
    out.write(`${JSON.stringify({ seq: r.seq, at: new Date(r.at).toISOString(), org: r.org_id, tokenId: r.token_id, tokenName: r.token_name, action: r.action, resourceId: r.resource_id, status: r.status, clientIp: r.client_ip })}\n`);
  }
}

/** `hookwarden audit verify`: walks the hash chain; a broken chain is an error (exit status 1). */
export async function auditVerify(config: Config, out: Out = process.stdout): Promise<void> {
  const result = await withDb(config, (db) => verifyAudit(db));
  if (!result.ok) {
    throw new HookwardenError("E_CONFLICT", 409, `audit log tampered with (${result.entries} entries checked): ${result.problems.join("; ")}`);
  }
  out.write(`audit log intact: ${result.entries} entries, hash chain verified\n`);
}
