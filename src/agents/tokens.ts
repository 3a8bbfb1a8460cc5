import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Selectable } from "kysely";
import type { Context } from "../context/index.js";
import { HookwardenError } from "../errors/index.js";
import { newId } from "../ids/index.js";
import type { AgentTokensTable } from "../store/schema.js";
import { SecretValue } from "../vault/secret-value.js";

export type AgentTokenRow = Selectable<AgentTokensTable>;
export type AgentMode = "forward" | "tunnel";

function hash(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

/**
 * Creates an agent credential for some of the organisation's buckets. The secret (256 random
 * bits) is returned once and stored only as its SHA-256: a lost secret cannot be recovered, only
 * replaced. The mode is fixed here and cannot be changed later.
 */
export async function createAgentToken(
  ctx: Context,
  orgId: string,
  input: { name: string; buckets: string[]; mode: AgentMode },
): Promise<{ row: AgentTokenRow; secret: SecretValue }> {
  if (input.buckets.length === 0) throw HookwardenError.invalidField(["body", "buckets"], "An agent token needs at least one bucket");
  const rows = await ctx.store.db
    .selectFrom("buckets")
    .select(["id", "name"])
    .where("org_id", "=", orgId)
    .where((eb) => eb.or([eb("id", "in", input.buckets), eb("name", "in", input.buckets)]))
    .execute();
  const ids: string[] = [];
  for (const b of input.buckets) {
    const hit = rows.find((r) => r.id === b || r.name === b);
    if (!hit) throw HookwardenError.invalidField(["body", "buckets"], `No bucket ${b} in this organisation`);
    if (!ids.includes(hit.id)) ids.push(hit.id);
  }
  const secret = new SecretValue(`as_${randomBytes(32).toString("base64url")}`);
  const row: AgentTokenRow = {
    id: newId("agt"),
    org_id: orgId,
    name: input.name,
    key: `ak_${randomBytes(12).toString("hex")}`,
    secret_hash: hash(secret.reveal()),
    buckets: JSON.stringify(ids),
    mode: input.mode,
    created_at: ctx.clock.now(),
  };
  await ctx.store.db.insertInto("agent_tokens").values(row).execute();
  return { row, secret };
}

export async function listAgentTokens(ctx: Context, orgId: string): Promise<AgentTokenRow[]> {
  return ctx.store.db.selectFrom("agent_tokens").selectAll().where("org_id", "=", orgId).orderBy("id").execute();
}

export async function findAgentToken(ctx: Context, orgId: string, id: string): Promise<AgentTokenRow> {
  const row = await ctx.store.db.selectFrom("agent_tokens").selectAll().where("org_id", "=", orgId).where("id", "=", id).executeTakeFirst();
  if (!row) throw HookwardenError.notFound("Agent token");
  return row;
}

export async function revokeAgentToken(ctx: Context, orgId: string, id: string): Promise<AgentTokenRow> {
  const row = await findAgentToken(ctx, orgId, id);
  await ctx.store.db.deleteFrom("agent_tokens").where("id", "=", row.id).execute();
  return row;
}

/**
 * How a bucket's agents answer, from the tokens that may serve it when none is connected:
 * "tunnel" if any token may tunnel it, "forward" if only forward tokens may, undefined if none.
 */
export async function agentModeOfBucket(ctx: Context, orgId: string, bucketId: string): Promise<AgentMode | undefined> {
  const rows = await ctx.store.db.selectFrom("agent_tokens").select(["buckets", "mode"]).where("org_id", "=", orgId).execute();
  const modes = rows.filter((r) => (JSON.parse(r.buckets) as string[]).includes(bucketId)).map((r) => r.mode as AgentMode);
  return modes.includes("tunnel") ? "tunnel" : modes.length > 0 ? "forward" : undefined;
}

/** Checks a key/secret pair; the comparison of digests is constant time. */
export async function authenticateAgent(ctx: Context, key: string, secret: string): Promise<AgentTokenRow | undefined> {
  const row = await ctx.store.db.selectFrom("agent_tokens").selectAll().where("key", "=", key).executeTakeFirst();
  const expected = Buffer.from(row?.secret_hash ?? "0".repeat(64), "hex");
  const given = Buffer.from(hash(secret), "hex");
  return timingSafeEqual(expected, given) && row ? row : undefined;
}
