import { createOrg, createToken, findOrgByName } from "../auth/tokens.js";
import { systemClock } from "../clock/index.js";
import type { Config } from "../config/index.js";
import { HookwardenError } from "../errors/index.js";
import { createLogger } from "../logger/index.js";
import { openStore } from "../store/index.js";
import { isUniqueViolation } from "../store/errors.js";

async function withStore<T>(config: Config, fn: (db: Awaited<ReturnType<typeof openStore>>["db"]) => Promise<T>): Promise<T> {
  const store = await openStore(config, createLogger({ level: "warn", destination: process.stderr }));
  try {
    return await fn(store.db);
  } finally {
    await store.close();
  }
}

/** `hookwarden org create NAME`: a new tenant; its token is printed once on stdout. */
export async function orgCreate(config: Config, name: string): Promise<void> {
  const token = await withStore(config, async (db) => {
    const now = systemClock.now();
    try {
      return await db.transaction().execute(async (trx) => createToken(trx, await createOrg(trx, name, now), "admin", now));
    } catch (err) {
      if (isUniqueViolation(err)) throw new HookwardenError("E_CONFLICT", 409, `Organisation "${name}" already exists`);
      throw err;
    }
  });
  process.stdout.write(`${token.reveal()}\n`);
}

/** `hookwarden token create --org NAME`. */
export async function tokenCreate(config: Config, orgName: string): Promise<void> {
  const token = await withStore(config, async (db) => {
    const orgId = await findOrgByName(db, orgName);
    if (!orgId) throw new HookwardenError("E_NOT_FOUND", 404, `No organisation named "${orgName}"`);
    return createToken(db, orgId, "cli", systemClock.now());
  });
  process.stdout.write(`${token.reveal()}\n`);
}
