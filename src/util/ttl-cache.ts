import type { Clock } from "../clock/index.js";

/**
 * The per-node lookup caches' store (applications, inputs, bucket outputs): entries live `ttlMs`
 * on the injected clock, and the whole map is dropped when it reaches `maxEntries` (simpler than
 * LRU, and a refill costs one query per key). A cached `undefined` is a remembered miss.
 *
 * @example
 * const cache = new TtlCache<Row | undefined>(clock, 2_000, 10_000);
 * const hit = cache.get(id); // { value } or undefined
 * if (!hit) cache.set(id, await load(id));
 */
export class TtlCache<V> {
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #entries = new Map<string, { value: V; until: number }>();

  constructor(clock: Clock, ttlMs: number, maxEntries: number) {
    this.#clock = clock;
    this.#ttlMs = ttlMs;
    this.#maxEntries = maxEntries;
  }

  /** The entry, while it is fresh. */
  get(key: string): { value: V } | undefined {
    const hit = this.#entries.get(key);
    return hit && hit.until > this.#clock.now() ? hit : undefined;
  }

  set(key: string, value: V): void {
    if (this.#entries.size >= this.#maxEntries && !this.#entries.has(key)) this.#entries.clear();
    this.#entries.set(key, { value, until: this.#clock.now() + this.#ttlMs });
  }

  /** Forgets one key, the keys `matching`, or everything. */
  delete(key?: string | ((key: string) => boolean)): void {
    if (key === undefined) this.#entries.clear();
    else if (typeof key === "string") this.#entries.delete(key);
    else for (const k of [...this.#entries.keys()]) if (key(k)) this.#entries.delete(k);
  }
}

/**
 * The per-node lookup caches' settings: two seconds, so a change made through another node applies
 * everywhere within that time (changes made through this node invalidate at once), and at most
 * 10,000 keys.
 */
export function lookupCache<V>(clock: Clock): TtlCache<V> {
  return new TtlCache<V>(clock, 2_000, 10_000);
}
