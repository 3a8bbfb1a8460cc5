import type { Context } from "../context/index.js";
import { HookwardenError } from "../errors/index.js";
import { newId } from "../ids/index.js";
import type { FunctionsTable } from "../store/schema.js";
import { isUniqueViolation } from "../store/errors.js";

/** Where a function is stored: an application (outbound, vault secrets) or a bucket (inbound). */
export interface FunctionScope {
  orgId: string;
  kind: "app" | "bucket";
  id: string;
}

export type FunctionRow = FunctionsTable;

/** Names are path segments and config references: short, ASCII, no dots or slashes. */
export const FUNCTION_NAME_RE = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
/** Functions are short transforms; 64 KB of source is far beyond what one needs. */
export const MAX_FUNCTION_CODE = 64 * 1024;

export function checkFunctionName(name: string, loc: string[] = ["body", "name"]): void {
  if (!FUNCTION_NAME_RE.test(name)) {
    throw HookwardenError.invalidField(loc, "Function names are 1-64 characters of A-Z, a-z, 0-9, _ and -, starting with a letter");
  }
}

export function checkFunctionCode(code: string): void {
  if (code.length === 0) throw HookwardenError.invalidField(["body", "code"], "A function needs code");
  if (code.length > MAX_FUNCTION_CODE) throw HookwardenError.invalidField(["body", "code"], `Function code is at most ${MAX_FUNCTION_CODE} characters`);
}

/**
 * Saves `code` as the next version of `name` (version 1 for a new name). Two saves racing for the
 * same version meet the unique constraint; the loser retries with the next number.
 */
export async function saveFunctionVersion(ctx: Context, scope: FunctionScope, name: string, code: string): Promise<FunctionRow> {
  for (let attempt = 0; ; attempt++) {
    const latest = await latestFunction(ctx, scope, name);
    const row: FunctionRow = {
      id: newId("fn"),
      org_id: scope.orgId,
      scope: scope.kind,
      scope_id: scope.id,
      name,
      version: (latest?.version ?? 0) + 1,
      code,
      created_at: ctx.clock.now(),
    };
    try {
      await ctx.store.db.insertInto("functions").values(row).execute();
      return row;
    } catch (err) {
      if (!isUniqueViolation(err) || attempt >= 3) {
        if (isUniqueViolation(err)) throw new HookwardenError("E_CONFLICT", 409, `Function ${name} is being saved concurrently; try again`);
        throw err;
      }
    }
  }
}

function scoped(ctx: Context, scope: FunctionScope) {
  return ctx.store.db.selectFrom("functions").selectAll().where("org_id", "=", scope.orgId).where("scope", "=", scope.kind).where("scope_id", "=", scope.id);
}

export async function latestFunction(ctx: Context, scope: FunctionScope, name: string): Promise<FunctionRow | undefined> {
  return scoped(ctx, scope).where("name", "=", name).orderBy("version", "desc").limit(1).executeTakeFirst();
}

/** The latest version of `name`, or the given version; 404 otherwise. */
export async function findFunction(ctx: Context, scope: FunctionScope, name: string, version?: number): Promise<FunctionRow> {
  const row = version === undefined
    ? await latestFunction(ctx, scope, name)
    : await scoped(ctx, scope).where("name", "=", name).where("version", "=", version).executeTakeFirst();
  if (!row) throw HookwardenError.notFound("Function");
  return row;
}

/** The latest version of every function in the scope, by name. */
export async function listFunctions(ctx: Context, scope: FunctionScope): Promise<FunctionRow[]> {
  const rows = await scoped(ctx, scope).orderBy("name").orderBy("version", "desc").execute();
  const seen = new Set<string>();
  return rows.filter((r) => (seen.has(r.name) ? false : (seen.add(r.name), true)));
}

export async function listFunctionVersions(ctx: Context, scope: FunctionScope, name: string): Promise<FunctionRow[]> {
  const rows = await scoped(ctx, scope).where("name", "=", name).orderBy("version", "desc").execute();
  if (rows.length === 0) throw HookwardenError.notFound("Function");
  return rows;
}

/** Deletes every version of `name`. */
export async function deleteFunction(ctx: Context, scope: FunctionScope, name: string): Promise<void> {
  const res = await ctx.store.db
    .deleteFrom("functions")
    .where("org_id", "=", scope.orgId)
    .where("scope", "=", scope.kind)
    .where("scope_id", "=", scope.id)
    .where("name", "=", name)
    .executeTakeFirst();
  if (Number(res.numDeletedRows) === 0) throw HookwardenError.notFound("Function");
}
