import type { Context } from "../context/index.js";
import { newId } from "../ids/index.js";
import type { Page } from "../store/page.js";
import type { Db } from "../store/types.js";
import { isForeignKeyViolation } from "../store/errors.js";
import type { OperationalEvent } from "./event-types.js";

/** Rows kept per endpoint: the console shows the recent story, not an archive. */
export const ENDPOINT_EVENTS_KEPT = 100;
/**
 * Inserts into one endpoint between two trims. A trim is one indexed DELETE; doing it every 20th
 * insert rather than on each keeps the write per event to a single small INSERT, and the table
 * holds at most `kept + trimEvery` rows per endpoint (plus what a restart forgets to count).
 */
export const ENDPOINT_EVENTS_TRIM_EVERY = 20;
/** Endpoints whose insert count is remembered; past it the oldest counter is forgotten. */
const MAX_COUNTERS = 10_000;

export interface EndpointEventRow {
  id: string;
  endpoint_id: string;
  type: string;
  data: string;
  created_at: number;
}

export interface EndpointEventLogOptions {
  kept?: number;
  trimEvery?: number;
}

/**
 * Deletes all but the newest `kept` events of one endpoint: one DELETE on the
 * `(endpoint_id, id)` index (ids are time-ordered ULIDs). With fewer rows the sub-select is
 * empty (NULL) and nothing matches.
 */
export async function trimEndpointEvents(db: Db, endpointId: string, kept: number): Promise<void> {
  await db
    .deleteFrom("endpoint_events")
    .where("endpoint_id", "=", endpointId)
    .where("id", "<", (eb) =>
      eb.selectFrom("endpoint_events").select("id").where("endpoint_id", "=", endpointId).orderBy("id", "desc").limit(1).offset(kept - 1),
    )
    .execute();
}

/** A page of an endpoint's events, newest first unless asked otherwise (`limit + 1` rows). */
export async function listEndpointEvents(ctx: Context, endpointId: string, page: Page): Promise<EndpointEventRow[]> {
  let q = ctx.store.db.selectFrom("endpoint_events").selectAll().where("endpoint_id", "=", endpointId);
  if (page.iterator) q = q.where("id", page.order === "ascending" ? ">" : "<", page.iterator);
  return q.orderBy("id", page.order === "ascending" ? "asc" : "desc").limit(page.limit + 1).execute();
}

/**
 * The per-endpoint log of operational events behind the console's endpoint page. Written for
 * every mapped event whose `data.endpointId` names an endpoint, whether or not the organisation
 * has operational endpoints. A failed write is logged, never thrown: the log must not slow or
 * break a delivery.
 */
export class EndpointEventLog {
  readonly #ctx: Context;
  readonly #kept: number;
  readonly #trimEvery: number;
  readonly #inserts = new Map<string, number>();

  constructor(ctx: Context, opts: EndpointEventLogOptions = {}) {
    this.#ctx = ctx;
    this.#kept = opts.kept ?? ENDPOINT_EVENTS_KEPT;
    this.#trimEvery = opts.trimEvery ?? ENDPOINT_EVENTS_TRIM_EVERY;
  }

  async record(event: OperationalEvent): Promise<void> {
    const endpointId = event.data["endpointId"];
    // endpoint.deleted: the endpoint and its log are gone already.
    if (typeof endpointId !== "string" || event.type === "endpoint.deleted") return;
    const { store, clock, logger } = this.#ctx;
    try {
      // Relaxed (no fsync of its own): a history for the console, which a power loss may shorten
      // by its last entries; committed with an fsync each took 0.5 ms of SQLite's event loop.
      await store.relaxed(async (trx) => {
        await trx
          .insertInto("endpoint_events")
          .values({ id: newId("opev"), endpoint_id: endpointId, type: event.type, data: JSON.stringify(event.data), created_at: clock.now() })
          .execute();
        if (this.#count(endpointId)) await trimEndpointEvents(trx, endpointId, this.#kept);
      });
    } catch (err) {
      // The endpoint was deleted between the event and this write: nothing left to log against.
      if (isForeignKeyViolation(err)) return;
      logger.error({ err, endpointId, type: event.type }, "could not record an endpoint's operational event");
    }
  }

  /** Counts one insert; true when this endpoint is due a trim. */
  #count(endpointId: string): boolean {
    const n = (this.#inserts.get(endpointId) ?? 0) + 1;
    this.#inserts.delete(endpointId);
    if (n >= this.#trimEvery) return true;
    if (this.#inserts.size >= MAX_COUNTERS) this.#inserts.delete(this.#inserts.keys().next().value!);
    this.#inserts.set(endpointId, n);
    return false;
  }
}
