import type { Context } from "../context/index.js";
import { findApplication, type ApplicationRow } from "./index.js";

const TTL_MS = 2_000;
const MAX_ENTRIES = 10_000;

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
  readonly #entries = new Map<string, { row: ApplicationRow; until: number }>();

  constructor(ctx: Context) {
    this.#ctx = ctx;
  }

  async get(orgId: string, idOrUid: string): Promise<ApplicationRow> {
    const key = `${orgId}\0${idOrUid}`;
    const now = this.#ctx.clock.now();
    const hit = this.#entries.get(key);
    if (hit && hit.until > now) return hit.row;
    const row = await findApplication(this.#ctx, orgId, idOrUid);
    if (this.#entries.size >= MAX_ENTRIES) this.#entries.clear();
    this.#entries.set(key, { row, until: now + TTL_MS });
    return row;
  }

  /** Forgets every entry of an organisation (an application changed or was deleted). */
  invalidate(orgId: string): void {
    for (const key of this.#entries.keys()) if (key.startsWith(`${orgId}\0`)) this.#entries.delete(key);
  }
}
