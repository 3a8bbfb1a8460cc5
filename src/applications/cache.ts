import type { Context } from "../context/index.js";
import { lookupCache, type TtlCache } from "../util/ttl-cache.js";
import { findApplication, type ApplicationRow } from "./index.js";

/**
 * Application lookups for the publish path, cached for two seconds like Svix's own message-app
 * cache (which keeps 30 s). One lookup per publish was the most frequent query in the
 * end-to-end bench (3,001 of ~5,000 statements for 3,000 messages on SQLite, one round trip each
 * on PostgreSQL). Changes made through this node invalidate at once; other nodes see them within
 * the TTL, and a deleted application still cannot receive messages (the insert's foreign key
 * refuses it, answered 404).
 */
export class ApplicationCache {
  readonly #ctx: Context;
  readonly #entries: TtlCache<ApplicationRow>;

  constructor(ctx: Context) {
    this.#ctx = ctx;
    this.#entries = lookupCache(ctx.clock);
  }

  async get(orgId: string, idOrUid: string): Promise<ApplicationRow> {
    const key = `${orgId}\0${idOrUid}`;
    const hit = this.#entries.get(key);
    if (hit) return hit.value;
    const row = await findApplication(this.#ctx, orgId, idOrUid);
    this.#entries.set(key, row);
    return row;
  }

  /** Forgets every entry of an organisation (an application changed or was deleted). */
  invalidate(orgId: string): void {
    this.#entries.delete((key) => key.startsWith(`${orgId}\0`));
  }
}
