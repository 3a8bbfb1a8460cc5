import { randomFillSync } from "node:crypto";
import { monotonicFactory } from "ulid";

/** ulid asks for one random byte per character; a getRandomValues call each was 4-6% of the gateway's CPU. */
function pooledRandom(): () => number {
  const pool = new Uint8Array(4096);
  let i = pool.length;
  return () => {
    if (i >= pool.length) {
      randomFillSync(pool);
      i = 0;
    }
    return pool[i++]! / 256;
  };
}

export type IdPrefix = "org" | "tok" | "app" | "ep" | "msg" | "atmpt" | "job" | "whs" | "bkt" | "out" | "req" | "rej" | "agt" | "qtask" | "fn" | "aud" | "opev";

/**
 * Svix-style ids: a type prefix and a time-ordered ULID, so `ORDER BY id` is creation order and a
 * cursor (`iterator`) is just the last id seen.
 *
 * @example newId("msg") // "msg_01JD3Q5Z6W2XK4M8N9P0R1S2T3"
 */
export function createIdGenerator(): (prefix: IdPrefix) => string {
  const ulid = monotonicFactory(pooledRandom());
  return (prefix) => `${prefix}_${ulid()}`;
}

export const newId = createIdGenerator();
