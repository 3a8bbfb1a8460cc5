import type { Logger } from "../logger/index.js";
import type { Db } from "../store/index.js";

/** A token's `last_used_at` is written at most this often: to the minute is what an operator needs. */
export const LAST_USE_RESOLUTION_MS = 60_000;

/**
 * Records when tokens are used, throttled in memory: at most one UPDATE per token per minute, not
 * awaited by the request (a publisher at thousands of requests per second on one token costs one
 * write a minute). A failed write is only logged at debug: it must never fail the request.
 */
export class TokenUse {
  readonly #db: Db;
  readonly #logger: Logger;
  readonly #written = new Map<string, number>();

  constructor(db: Db, logger: Logger) {
    this.#db = db;
    this.#logger = logger;
  }

  touch(tokenId: string, now: number): void {
    const last = this.#written.get(tokenId);
    if (last !== undefined && now - last < LAST_USE_RESOLUTION_MS) return;
    if (this.#written.size > 10_000) this.#written.clear();
    this.#written.set(tokenId, now);
    this.#db
      .updateTable("api_tokens")
      .set({ last_used_at: now })
      .where("id", "=", tokenId)
      .execute()
      .catch((err: unknown) => this.#logger.debug({ err, tokenId }, "could not record a token's last use"));
  }
}
