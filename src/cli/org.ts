import { createOrg, createToken, createTokenRow, findOrgByName, listOrgs, listTokens, revokeToken, TOKEN_SCOPES, type TokenScope } from "../auth/tokens.js";
import { systemClock } from "../clock/index.js";
import type { Config } from "../config/index.js";
import { HookwardenError } from "../errors/index.js";
import { createLogger } from "../logger/index.js";
import { openStore } from "../store/index.js";
import { isUniqueViolation } from "../store/errors.js";
import { AuditLog } from "../audit/index.js";
import { cliActor } from "../incident/actor.js";

type Out = { write(text: string): unknown };

type Db = Awaited<ReturnType<typeof openStore>>["db"];
/** Writes one audit entry of a CLI change: who is the OS user (`cli:<user>`), no token, no address. */
type Audit = (orgId: string, action: string, resourceId: string) => Promise<void>;

async function withStore<T>(config: Config, fn: (db: Db, audit: Audit) => Promise<T>): Promise<T> {
  const logger = createLogger({ level: "warn", destination: process.stderr, format: "json" });
  const store = await openStore(config, logger);
  const log = new AuditLog(store, logger);
  const audit: Audit = (orgId, action, resourceId) =>
    log.append({ orgId, tokenId: null, tokenName: cliActor(), action: `CLI ${action}`, resourceId, status: 200, clientIp: null, at: systemClock.now() });
  try {
    return await fn(store.db, audit);
  } finally {
    await log.flush();
    await store.close();
  }
}

const when = (ms: number | null) => (ms === null ? "never" : new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z"));

/** Aligned columns, the header first. */
function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n") + "\n";
}

/** `hookwarden org create NAME`: a new tenant; its token is printed once on stdout. */
export async function orgCreate(config: Config, name: string, out: Out = process.stdout): Promise<void> {
  const token = await withStore(config, async (db, audit) => {
    const now = systemClock.now();
    let made;
    try {
      made = await db.transaction().execute(async (trx) => {
        const orgId = await createOrg(trx, name, now);
        return { orgId, token: await createToken(trx, orgId, "admin", now) };
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new HookwardenError("E_CONFLICT", 409, `Organisation "${name}" already exists`);
      throw err;
    }
    await audit(made.orgId, "org create", made.orgId);
    return made.token;
  });
  out.write(`${token.reveal()}\n`);
}

/** `hookwarden org list`: every organisation, with how many tokens it has. */
export async function orgList(config: Config, out: Out = process.stdout): Promise<void> {
  const orgs = await withStore(config, (db) => listOrgs(db));
  out.write(table([["ID", "NAME", "TOKENS", "CREATED"], ...orgs.map((o) => [o.id, o.name, String(o.tokens), when(o.createdAt)])]));
}

/** `hookwarden token create --org NAME [--name N] [--scope full|read-only] [--app APP]`: the token is printed once. */
export async function tokenCreate(config: Config, orgName: string, opts: { name?: string; scope?: string; app?: string } = {}, out: Out = process.stdout): Promise<void> {
  const scope = (opts.scope ?? "full") as TokenScope;
  if (!TOKEN_SCOPES.includes(scope)) throw new HookwardenError("E_VALIDATION", 422, `--scope must be one of ${TOKEN_SCOPES.join(", ")}`);
  const name = (opts.name ?? "cli").trim();
  if (name.length === 0 || name.length > 100) throw new HookwardenError("E_VALIDATION", 422, "--name must be 1 to 100 characters");
  const token = await withStore(config, async (db, audit) => {
    const orgId = await findOrgByName(db, orgName);
    if (!orgId) throw new HookwardenError("E_NOT_FOUND", 404, `No organisation named "${orgName}" (hookwarden org list shows them)`);
    let appId: string | null = null;
    if (opts.app !== undefined) {
      const app = await db
        .selectFrom("applications")
        .select("id")
        .where("org_id", "=", orgId)
        .where("internal", "=", 0)
        .where((eb) => eb.or([eb("id", "=", opts.app!), eb("uid", "=", opts.app!)]))
        .executeTakeFirst();
      if (!app) throw new HookwardenError("E_NOT_FOUND", 404, `No application "${opts.app}" in organisation "${orgName}"`);
      appId = app.id;
    }
    const made = await createTokenRow(db, orgId, name, systemClock.now(), undefined, { scope, appId });
    await audit(orgId, "token create", made.id);
    return made.token;
  });
  out.write(`${token.reveal()}\n`);
}

/** `hookwarden token list [--org NAME]`: ids, names, scopes and times; never a token value. */
export async function tokenList(config: Config, orgName: string | undefined, out: Out = process.stdout): Promise<void> {
  const { tokens, orgs } = await withStore(config, async (db) => {
    const orgs = await listOrgs(db);
    let orgId: string | undefined;
    if (orgName !== undefined) {
      orgId = orgs.find((o) => o.name === orgName)?.id;
      if (!orgId) throw new HookwardenError("E_NOT_FOUND", 404, `No organisation named "${orgName}" (hookwarden org list shows them)`);
    }
    return { tokens: await listTokens(db, orgId), orgs };
  });
  const orgName_ = (id: string) => orgs.find((o) => o.id === id)?.name ?? id;
  out.write(
    table([
      ["ID", "ORG", "NAME", "SCOPE", "APP", "CREATED", "LAST USED"],
      ...tokens.map((t) => [t.id, orgName_(t.orgId), t.name, t.scope, t.appId ?? "-", when(t.createdAt), when(t.lastUsedAt)]),
    ]),
  );
}

/** `hookwarden token revoke ID`: servers stop accepting it within 5 s (their lookup cache). */
export async function tokenRevoke(config: Config, id: string, out: Out = process.stdout): Promise<void> {
  const revoked = await withStore(config, async (db, audit) => {
    const row = await db.selectFrom("api_tokens").select("org_id").where("id", "=", id).executeTakeFirst();
    if (!row || !(await revokeToken(db, id))) return false;
    await audit(row.org_id, "token revoke", id);
    return true;
  });
  if (!revoked) throw new HookwardenError("E_NOT_FOUND", 404, `No token with id ${id} (hookwarden token list shows them)`);
  out.write(`revoked ${id}\n`);
}
