import type { ApplicationRow } from "../applications/index.js";
import type { Context } from "../context/index.js";
import { HookwardenError } from "../errors/index.js";
import { newId } from "../ids/index.js";
import { CHUNK, fitsOneStatement, insertWithJobs } from "../store/batch-write.js";
import { commitBatch, type Db } from "../store/index.js";
import { GroupCommit } from "../store/group-commit.js";
import { isForeignKeyViolation, notDurable } from "../store/errors.js";
import type { JobRow } from "../queue/types.js";
import { HandOffBatch, type HandOff } from "../queue/hand-off.js";
import { readManyThrough } from "../store/table-writes.js";
import { lookupCache, type TtlCache } from "../util/ttl-cache.js";
import { endpointMatches } from "./filter.js";
import { messageRetention } from "./expiry.js";
import type { MessageRow } from "./index.js";

export interface PublishInput {
  eventType: string;
  payload: Record<string, unknown>;
  eventId?: string | null | undefined;
  channels?: string[] | null | undefined;
  tags?: string[] | null | undefined;
  /** Epoch ms: the jobs wait in the queue until then (svix `deliverAt`); absent or past means now. */
  deliverAt?: number | null | undefined;
  /** W3C `traceparent` of the publish span, stored so the attempts are its children (tracing on). */
  traceContext?: string | undefined;
  /** How long the payload is kept, in ms (svix `payloadRetentionPeriod`/`Hours`); else the app's or `--retention`. */
  retention?: number | undefined;
}

/** The local worker's direct hand-off of new outbound jobs, started with their message rows. */
export type OutboundHandOff = HandOff<ReadonlyMap<string, MessageRow>>;

export interface PublishResult {
  row: MessageRow;
  /** False when an `eventId` or `idempotency-key` seen in the last 24 h returned the original. */
  created: boolean;
}

interface Pending {
  app: ApplicationRow;
  row: MessageRow;
  keys: { scope: string; key: string }[];
  resolve: (r: PublishResult) => void;
  reject: (err: unknown) => void;
}

/** Rows per transaction; bounded so one commit stays short and under both dialects' parameter limits. */
const MAX_BATCH = 256;
/** What routing reads of an endpoint, and the tables it comes from. */
type RouteRow = { id: string; app_id: string; filter_types: string | null; channels: string | null };
const ROUTE_TABLES = ["applications", "endpoints"];
const MAX_QUEUED = 20_000;

/**
 * Group commit for publishing. Every request waits for the transaction that holds its message
 * and its delivery jobs to commit and reach the disk (`Store.durable`: so a 202 means durable),
 * but requests that arrive meanwhile share the next commit. Under load this turns N fsyncs into
 * one, and on SQLite the fsync runs in the thread pool while the next batch commits.
 *
 * Jobs the local worker can start at once are handed to it directly (`HandOff`): no claim, no
 * wake-up, no re-read of the message. See BENCHMARKS.md for the measured effect of each.
 */
export class Publisher {
  readonly #ctx: Context;
  readonly #worker: OutboundHandOff | undefined;
  readonly #group: GroupCommit<Pending>;
  readonly #routeCache: TtlCache<RouteRow[] | undefined> | undefined;

  /** `worker` takes the jobs it can start at once; the others go through `ctx.queue`. */
  constructor(ctx: Context, worker?: OutboundHandOff) {
    this.#ctx = ctx;
    this.#worker = worker;
    if (ctx.config.deliveryCache) {
      const cache = lookupCache<RouteRow[] | undefined>(ctx.clock);
      ctx.store.writes.watch(ROUTE_TABLES, () => cache.delete());
      this.#routeCache = cache;
    }
    this.#group = new GroupCommit<Pending>(ctx.store, {
      enabled: ctx.config.groupCommit,
      maxBatch: MAX_BATCH,
      commit: (batch, release) => this.#commit(batch, release),
      refusal: (err) => (isForeignKeyViolation(err) ? HookwardenError.notFound("Application") : err),
    });
  }

  publish(app: ApplicationRow, input: PublishInput, idempotencyKey?: string): Promise<PublishResult> {
    if (this.#group.waiting >= MAX_QUEUED) {
      return Promise.reject(new HookwardenError("E_UNAVAILABLE", 503, "Too many messages waiting to be stored; retry shortly", { retryAfter: 1 }));
    }
    const now = this.#ctx.clock.now();
    const row: MessageRow = {
      id: newId("msg"),
      org_id: app.org_id,
      app_id: app.id,
      event_id: input.eventId ?? null,
      event_type: input.eventType,
      payload: JSON.stringify(input.payload),
      channels: input.channels && input.channels.length > 0 ? JSON.stringify(input.channels) : null,
      tags: input.tags && input.tags.length > 0 ? JSON.stringify(input.tags) : null,
      created_at: now,
      deliver_at: input.deliverAt != null && input.deliverAt > now ? input.deliverAt : null,
      trace_context: input.traceContext ?? null,
      expires_at: now + messageRetention(this.#ctx.config, app, input.retention),
    };
    const keys: Pending["keys"] = [];
    if (row.event_id !== null) keys.push({ scope: `event:${app.id}`, key: row.event_id });
    // Per application, as Svix keys it on the request URL: one key sent to several apps (a client
    // keying on its own event ids) must create a message in each, not return the first app's.
    if (idempotencyKey !== undefined) keys.push({ scope: `idem:${app.id}`, key: idempotencyKey });
    return new Promise((resolve, reject) => this.#group.add({ app, row, keys, resolve, reject }));
  }

  /**
   * The enabled endpoints of these applications, with what routing reads (types, channels): kept
   * 2 s per node with `--delivery-cache` (one query per publish batch before), dropped by any write
   * to the endpoints or applications tables (`Store.writes`: at once through this process, on the
   * next batch or NOTIFY from another), so an endpoint created or disabled through any node routes
   * from the next batch on.
   */
  async #routes(appIds: string[]): Promise<RouteRow[]> {
    const { store } = this.#ctx;
    const load = async (ids: readonly string[]) =>
      store.db.selectFrom("endpoints").select(["id", "app_id", "filter_types", "channels"]).where("app_id", "in", [...new Set(ids)]).where("disabled", "=", 0).execute();
    if (!this.#routeCache) return load(appIds);
    const byApp = await readManyThrough(store.writes, ROUTE_TABLES, this.#routeCache, appIds, async (missing) => {
      const out = new Map<string, RouteRow[]>(missing.map((id) => [id, []]));
      for (const row of await load(missing)) out.get(row.app_id)!.push(row);
      return out;
    });
    return [...byApp.values()].flat();
  }

  /** Resolves when every accepted publish has been committed or refused. */
  drain(): Promise<void> {
    return this.#group.drain();
  }

  async #commit(batch: Pending[], release: () => void): Promise<void> {
    const ctx = this.#ctx;
    const now = ctx.clock.now();
    // Requests in the same batch that share a key follow the first one.
    const leaderOf = new Map<string, Pending>();
    const followers = new Map<Pending, Pending>();
    const leaders: Pending[] = [];
    for (const p of batch) {
      const leader = p.keys.map((k) => leaderOf.get(`${k.scope}\0${k.key}`)).find((l) => l !== undefined);
      if (leader) {
        followers.set(p, leader);
        continue;
      }
      leaders.push(p);
      for (const k of p.keys) leaderOf.set(`${k.scope}\0${k.key}`, p);
    }

    const fanout = new Map<string, number>();
    const existing = new Map<Pending, string>();
    const { store } = ctx;
    const endpoints = await this.#routes(leaders.map((p) => p.app.id));
    const jobRows = (fresh: Pending[]): JobRow[] => {
      const rows: JobRow[] = [];
      for (const p of fresh) {
        const channels = p.row.channels === null ? null : (JSON.parse(p.row.channels) as string[]);
        for (const ep of endpoints) {
          if (ep.app_id !== p.app.id || !endpointMatches(ep, p.row.event_type, channels)) continue;
          fanout.set(p.row.id, (fanout.get(p.row.id) ?? 0) + 1);
          rows.push({
            id: newId("job"),
            org_id: p.row.org_id,
            scope_id: p.row.app_id,
            item_id: p.row.id,
            destination_id: ep.id,
            attempt: 0,
            trigger_type: 0,
            run_at: p.row.deliver_at ?? now,
            locked_by: null,
            created_at: p.row.created_at,
            kind: "outbound",
          });
        }
      }
      return rows;
    };
    // Jobs the local worker takes at once are inserted leased to it (`HandOff`); only the others
    // need a wake-up (here and, through NOTIFY, on other nodes).
    const handOff = new HandOffBatch(this.#worker, ctx.queue);
    const write = async (db: Db) => {
      const dupes = await claimKeys(db, leaders, now, ctx.config.idempotencyTtl);
      for (const [p, msgId] of dupes) existing.set(p, msgId);
      const fresh = leaders.filter((p) => !existing.has(p));
      if (fresh.length === 0) return;
      fanout.clear();
      const rows = jobRows(fresh);
      // Scheduled jobs (deliverAt) are not due: they wait in the queue for the poll.
      const due = rows.filter((r) => r.run_at <= now);
      await insertWithJobs(store, db, "messages", fresh.map((p) => p.row), rows, handOff.offer(rows, due, now));
    };
    // Without idempotency keys (and small enough for one statement) a PostgreSQL batch needs no
    // BEGIN/COMMIT: the single statement is atomic. Anything larger keeps its transaction.
    try {
      await commitBatch(store, leaders.every((p) => p.keys.length === 0) && fitsOneStatement(store, leaders.length, jobRows(leaders).length), write);
    } catch (err) {
      handOff.failed();
      throw err;
    }

    const originals = await loadMessages(ctx.store.db, [...existing.values()]);
    const results = new Map<Pending, PublishResult | Error>();
    for (const p of leaders) {
      const dupeOf = existing.get(p);
      if (dupeOf === undefined) {
        results.set(p, { row: p.row, created: true });
        ctx.events.emit("message:published", { orgId: p.row.org_id, appId: p.row.app_id, msgId: p.row.id, endpoints: fanout.get(p.row.id) ?? 0 });
      } else {
        const original = originals.get(dupeOf);
        results.set(p, original ? { row: original, created: false } : new HookwardenError("E_CONFLICT", 409, "The message this idempotency key refers to was deleted"));
      }
    }
    for (const [p, leader] of followers) {
      const r = results.get(leader)!;
      results.set(p, r instanceof Error ? r : { row: r.row, created: false });
    }
    const settle = () => {
      for (const p of batch) {
        const r = results.get(p)!;
        if (r instanceof Error) p.reject(r);
        else p.resolve(r);
      }
    };
    this.#group.settle(
      () => {
        settle();
        release();
      },
      (err) => {
        release();
        ctx.logger.error({ err }, "could not flush committed messages to disk");
        for (const p of batch) p.reject(notDurable(err, "The message could not be made durable; retry with the same idempotency key"));
      },
    );
    handOff.committed(new Map(leaders.filter((p) => !existing.has(p)).map((p) => [p.row.id, p.row])));
  }
}

/**
 * Records each leader's idempotency keys, replacing rows that expired. Returns the leaders that
 * hit a live key, with the id of the message that key already points to.
 */
async function claimKeys(trx: Db, leaders: Pending[], now: number, ttl: number): Promise<Map<Pending, string>> {
  const out = new Map<Pending, string>();
  const withKeys = leaders.filter((p) => p.keys.length > 0);
  if (withKeys.length === 0) return out;
  const values = withKeys.flatMap((p) => p.keys.map((k) => ({ scope: k.scope, key: k.key, msg_id: p.row.id, created_at: now, expires_at: now + ttl })));
  const inserted = new Set<string>();
  for (let i = 0; i < values.length; i += CHUNK) {
    const rows = await trx
      .insertInto("idempotency_keys")
      .values(values.slice(i, i + CHUNK))
      .onConflict((oc) =>
        oc
          .columns(["scope", "key"])
          .doUpdateSet((eb) => ({
            msg_id: eb.ref("excluded.msg_id"),
            created_at: eb.ref("excluded.created_at"),
            expires_at: eb.ref("excluded.expires_at"),
          }))
          .where("idempotency_keys.expires_at", "<=", now),
      )
      .returning(["scope", "key"])
      .execute();
    for (const r of rows) inserted.add(`${r.scope}\0${r.key}`);
  }
  const clashes = withKeys.filter((p) => p.keys.some((k) => !inserted.has(`${k.scope}\0${k.key}`)));
  if (clashes.length === 0) return out;
  const pairs = clashes.flatMap((p) => p.keys.filter((k) => !inserted.has(`${k.scope}\0${k.key}`)));
  const found = await trx
    .selectFrom("idempotency_keys")
    .select(["scope", "key", "msg_id"])
    .where((eb) => eb.or(pairs.map((k) => eb.and([eb("scope", "=", k.scope), eb("key", "=", k.key)]))))
    .execute();
  const msgOf = new Map(found.map((r) => [`${r.scope}\0${r.key}`, r.msg_id]));
  for (const p of clashes) {
    const hit = p.keys.map((k) => msgOf.get(`${k.scope}\0${k.key}`)).find((m) => m !== undefined);
    if (hit !== undefined) out.set(p, hit);
  }
  // A duplicate's other keys must not point at a message that will never exist.
  const orphaned = [...out.keys()].map((p) => p.row.id);
  if (orphaned.length > 0) await trx.deleteFrom("idempotency_keys").where("msg_id", "in", orphaned).execute();
  return out;
}

async function loadMessages(db: Db, ids: string[]): Promise<Map<string, MessageRow>> {
  if (ids.length === 0) return new Map();
  const rows = await db.selectFrom("messages").selectAll().where("id", "in", ids).execute();
  return new Map(rows.map((r) => [r.id, r]));
}
