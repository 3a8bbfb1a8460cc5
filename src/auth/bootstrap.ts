import type { Config } from "../config/index.js";
import type { Db } from "../store/index.js";
import type { SecretValue } from "../vault/secret-value.js";
import { createOrg, createToken } from "./tokens.js";

export const DEFAULT_ORG = "default";

/**
 * On the very first start (no organisation yet) creates the `default` organisation and its admin
 * token: the operator's `HOOKWARDEN_ADMIN_TOKEN` if set, else a generated one that the caller
 * prints once. Later starts return `undefined`: the token cannot be shown again.
 */
export async function bootstrapAdmin(db: Db, config: Config, now: number): Promise<{ token: SecretValue; generated: boolean } | undefined> {
  return db.transaction().execute(async (trx) => {
    const existing = await trx.selectFrom("orgs").select("id").limit(1).executeTakeFirst();
    if (existing) return undefined;
    const orgId = await createOrg(trx, DEFAULT_ORG, now);
    const token = await createToken(trx, orgId, "admin", now, config.adminToken);
    return { token, generated: config.adminToken === undefined };
  });
}
