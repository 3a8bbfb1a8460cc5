import type { Context } from "../context/index.js";
import type { EndpointRow } from "../endpoints/index.js";
import { loadSigningKeys } from "../endpoints/secrets.js";
import { selectByIds } from "../store/hot.js";
import { readManyThrough } from "../store/table-writes.js";
import { lookupCache, type TtlCache } from "../util/ttl-cache.js";
import { loadEndpointContexts, type EndpointContext } from "./endpoint-context.js";
import { loadTransformations } from "./endpoint-transform.js";

/** An endpoint as a batch of deliveries needs it: its row (with its health) and its context. */
export interface ReadyEndpoint {
  readonly endpoint: EndpointRow;
  readonly context: EndpointContext;
}

/** Tables whose rows go into a `ReadyEndpoint`: a write to any of them empties the cache. */
const SOURCES = ["applications", "endpoints", "endpoint_secrets", "endpoint_transformations", "vault_secrets"];

/**
 * Endpoints ready to deliver to, read in one round trip with the batch's messages. Without a
 * cache every hand-off of one or two messages read the endpoint, its signing keys and its
 * transformation again and opened its secrets: three queries per batch, 20% of the gateway's CPU
 * per message in a quick SQLite e2e run (see BENCHMARKS.md).
 *
 * `EndpointCache` keeps them two seconds (`lookupCache`, like the bucket outputs of the forward
 * kind). Any write to a table they come from (an API change, a recorded failure, a circuit
 * opening, a rotated secret) empties it (`Store.writes`): at once when made through this process;
 * when made by another (a CLI command, another node) before the next batch on SQLite, and as soon
 * as PostgreSQL's NOTIFY arrives there, the TTL bounding what a lost notification can leave.
 * `--delivery-cache false` reads them for every batch (`uncachedEndpoints`).
 */
export interface EndpointSource {
  /** The endpoints of `ids` that exist (loaded with `also`, run in the same round trip). */
  of<T>(ids: readonly string[], now: number, also: Promise<T>): Promise<{ endpoints: Map<string, ReadyEndpoint>; also: T }>;
}

export function uncachedEndpoints(ctx: Context, withTransformations: boolean): EndpointSource {
  return {
    of: async (ids, now, also) => {
      const [endpoints, alsoValue] = await Promise.all([readEndpoints(ctx, ids, now, withTransformations), also]);
      return { endpoints, also: alsoValue };
    },
  };
}

export class EndpointCache implements EndpointSource {
  readonly #ctx: Context;
  readonly #withTransformations: boolean;
  readonly #entries: TtlCache<ReadyEndpoint | undefined>;

  constructor(ctx: Context, withTransformations: boolean) {
    this.#ctx = ctx;
    this.#withTransformations = withTransformations;
    this.#entries = lookupCache(ctx.clock);
    ctx.store.writes.watch(SOURCES, () => this.#entries.delete());
  }

  async of<T>(ids: readonly string[], now: number, also: Promise<T>): Promise<{ endpoints: Map<string, ReadyEndpoint>; also: T }> {
    // Run beside `also` (the batch's messages): one round trip for both.
    const [endpoints, alsoValue] = await Promise.all([
      readManyThrough(this.#ctx.store.writes, SOURCES, this.#entries, ids, (missing) => readEndpoints(this.#ctx, missing, now, this.#withTransformations)),
      also,
    ]);
    return { endpoints, also: alsoValue };
  }
}

/** The endpoints' rows, signing keys and transformations in one round trip, then their contexts. */
async function readEndpoints(ctx: Context, ids: readonly string[], now: number, withTransformations: boolean): Promise<Map<string, ReadyEndpoint>> {
  const epIds = [...new Set(ids)];
  // The keys of an unsigned endpoint are simply not used.
  const [rows, keys, transformations] = await Promise.all([
    selectByIds(ctx.store.db, "endpoints", epIds),
    loadSigningKeys(ctx, epIds, now),
    withTransformations ? loadTransformations(ctx, epIds) : undefined,
  ]);
  const contexts = await loadEndpointContexts(ctx, rows, now, { keys, ...(transformations ? { transformations } : {}) });
  const endpoints = new Map<string, ReadyEndpoint>();
  for (const endpoint of rows) endpoints.set(endpoint.id, { endpoint, context: contexts.get(endpoint.id)! });
  return endpoints;
}
