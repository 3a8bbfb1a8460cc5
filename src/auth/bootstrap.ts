import type { Config } from "../config/index.js";
import { HookwardenError } from "../errors/index.js";
import type { Db } from "../store/index.js";
import type { SecretValue } from "../vault/secret-value.js";
import { createOrg, createToken, hashToken } from "./tokens.js";

export const DEFAULT_ORG = "default";

/**
 * On the very first start (no organisation yet) creates the `default` organisation and its admin
 * token: the operator's `HOOKWARDEN_ADMIN_TOKEN` if set, else a generated one that the caller
 * prints once. Later starts return `undefined`: the token cannot be shown again.
 *
 * `HOOKWARDEN_ADMIN_TOKEN` on an initialised installation is accepted when it is one of its tokens
 * (the same environment restarting); any other value is refused: silently ignoring it left the
 * operator holding a token that answers 401.
 */
export async function bootstrapAdmin(db: Db, config: Config, now: number): Promise<{ token: SecretValue; generated: boolean } | undefined> {
  return db.transaction().execute(async (trx) => {
    const existing = await trx.selectFrom("orgs").select("id").limit(1).executeTakeFirst();
    if (existing) {
      if (config.adminToken !== undefined) {
        const known = await trx.selectFrom("api_tokens").select("id").where("token_hash", "=", hashToken(config.adminToken.reveal())).executeTakeFirst();
        if (!known) {
          throw new HookwardenError(
            "E_CONFIG",
            500,
            `HOOKWARDEN_ADMIN_TOKEN is only used on the first start, and this installation is already initialised without that token; unset it and create a token with: hookwarden token create --org ${DEFAULT_ORG} --name NAME`,
          );
        }
      }
      return undefined;
    }
    const orgId = await createOrg(trx, DEFAULT_ORG, now);
    const token = await createToken(trx, orgId, "admin", now, config.adminToken);
    return { token, generated: config.adminToken === undefined };
  });
}
