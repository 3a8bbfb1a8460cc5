import { monotonicFactory } from "ulid";
import { RandomPool } from "./random-pool.js";

export type IdPrefix = "org" | "tok" | "app" | "ep" | "msg" | "atmpt" | "job" | "whs" | "bkt" | "out" | "req" | "rej" | "agt" | "qtask" | "fn" | "aud" | "opev";

/**
 * Svix-style ids: a type prefix and a time-ordered ULID, so `ORDER BY id` is creation order and a
 * cursor (`iterator`) is just the last id seen.
 *
 * @example newId("msg") // "msg_01JD3Q5Z6W2XK4M8N9P0R1S2T3"
 */
export function createIdGenerator(): (prefix: IdPrefix) => string {
  // ulid asks for one random byte per character; a getRandomValues call each was 4-6% of the
  // gateway's CPU.
  const pool = new RandomPool();
  const ulid = monotonicFactory(() => pool.fraction());
  return (prefix) => `${prefix}_${ulid()}`;
}

export const newId = createIdGenerator();
