import type { Context } from "../context/index.js";
import type { IncidentScopeKind } from "../events/index.js";
import type { Db } from "../store/index.js";
import { isUniqueViolation } from "../store/errors.js";
import type { IncidentScope } from "./scope.js";

export interface PauseInfo {
  id: string;
  orgId: string;
  kind: IncidentScopeKind;
  actor: string;
  createdAt: number;
}

/**
 * Pauses deliveries of `scope`: from the next claim on, its jobs stay in the queue (publishing and
 * the public inbound keep accepting; nothing is dropped). Attempts already in flight finish.
 * `created` is false when it was already paused (the step is idempotent).
 */
export async function pause(ctx: Context, scope: IncidentScope, actor: string, pauses?: PauseSet): Promise<{ pause: PauseInfo; created: boolean }> {
  const now = ctx.clock.now();
  let created = true;
  try {
    await ctx.store.db.insertInto("incident_pauses").values({ id: scope.id, org_id: scope.orgId, kind: scope.kind, actor, created_at: now }).execute();
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    created = false;
  }
  pauses?.add(scope.id);
  const row = await ctx.store.db.selectFrom("incident_pauses").selectAll().where("id", "=", scope.id).executeTakeFirstOrThrow();
  if (created) ctx.events.emit("incident:paused", { orgId: scope.orgId, scope: scope.kind, targetId: scope.id, actor, at: now });
  return { pause: toInfo(row), created };
}

/**
 * Lifts a pause: the held jobs are due at once (their `run_at` never moved), so the local worker
 * is woken and, on PostgreSQL, every node through NOTIFY. False when `scope` was not paused.
 */
export async function resume(ctx: Context, scope: IncidentScope, actor: string, pauses?: PauseSet): Promise<boolean> {
  const now = ctx.clock.now();
  const removed = await ctx.queue.transaction(async (trx, queue) => {
    const res = await trx.deleteFrom("incident_pauses").where("id", "=", scope.id).where("org_id", "=", scope.orgId).executeTakeFirst();
    const n = Number(res.numDeletedRows);
    if (n > 0) queue.due();
    return n > 0;
  });
  pauses?.delete(scope.id);
  if (removed) ctx.events.emit("incident:resumed", { orgId: scope.orgId, scope: scope.kind, targetId: scope.id, actor, at: now });
  return removed;
}

/** Pauses in force, oldest first (of one organisation, or of all). */
export async function listPauses(db: Db, orgId?: string): Promise<PauseInfo[]> {
  let q = db.selectFrom("incident_pauses").selectAll().orderBy("created_at").orderBy("id");
  if (orgId !== undefined) q = q.where("org_id", "=", orgId);
  return (await q.execute()).map(toInfo);
}

function toInfo(r: { id: string; org_id: string; kind: string; actor: string; created_at: number }): PauseInfo {
  return { id: r.id, orgId: r.org_id, kind: r.kind as IncidentScopeKind, actor: r.actor, createdAt: Number(r.created_at) };
}

/**
 * This node's copy of the paused ids, for the one decision that cannot wait for a query: the
 * direct hand-off (`DeliveryWorker.take`), made synchronously while a publish or an inbound
 * request commits. A pause made on this node applies at once; one made elsewhere (another node,
 * the CLI) within one `refreshMs` (the poll interval). The claim itself always reads the table.
 */
export class PauseSet {
  readonly #db: Db;
  #ids = new Set<string>();
  /** Bumped by local changes: a refresh whose read started before one must not undo it. */
  #gen = 0;
  #timer: NodeJS.Timeout | undefined;
  #onError: (err: unknown) => void;

  constructor(db: Db, onError: (err: unknown) => void = () => {}) {
    this.#db = db;
    this.#onError = onError;
  }

  /** Whether a job of this organisation and application (or bucket) must stay queued. */
  blocks(orgId: string, appId: string): boolean {
    return this.#ids.size > 0 && (this.#ids.has(appId) || this.#ids.has(orgId));
  }

  add(id: string): void {
    this.#gen++;
    this.#ids.add(id);
  }

  delete(id: string): void {
    this.#gen++;
    this.#ids.delete(id);
  }

  async refresh(): Promise<void> {
    const gen = this.#gen;
    const rows = await this.#db.selectFrom("incident_pauses").select("id").execute();
    if (gen === this.#gen) this.#ids = new Set(rows.map((r) => r.id));
  }

  async start(refreshMs: number): Promise<void> {
    await this.refresh();
    this.#timer = setInterval(() => void this.refresh().catch(this.#onError), refreshMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }
}
