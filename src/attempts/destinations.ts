import { sql, type Selectable } from "kysely";
import type { Context } from "../context/index.js";
import type { Page } from "../store/page.js";
import type { EndpointsTable, MessagesTable } from "../store/schema.js";

/** Svix's message status per destination: 0 success, 1 pending, 2 fail, 3 sending. */
export const STATUS_SUCCESS = 0;
export const STATUS_PENDING = 1;
export const STATUS_FAIL = 2;
export const STATUS_SENDING = 3;

export interface DestinationStatus {
  status: number;
  /** When the waiting job runs next (epoch ms), or null when nothing is queued. */
  nextAttempt: number | null;
}

/**
 * The status of message → endpoint pairs, as Svix reports them: a queued job makes the pair
 * pending (sending while a worker holds it), otherwise the latest attempt decides. Scalar
 * subqueries keep it one statement on both dialects.
 */
function pairColumns(msgRef: string, epRef: string) {
  const jobs = sql`from jobs j where j.item_id = ${sql.ref(msgRef)} and j.destination_id = ${sql.ref(epRef)} and j.kind = 'outbound'`;
  return {
    jobStatus: sql<number | null>`(select case when j.locked_by is null then ${sql.lit(STATUS_PENDING)} else ${sql.lit(STATUS_SENDING)} end ${jobs} order by j.run_at limit 1)`,
    nextAttempt: sql<number | null>`(select min(j.run_at) ${jobs})`,
    lastStatus: sql<number | null>`(select a.status from attempts a where a.item_id = ${sql.ref(msgRef)} and a.destination_id = ${sql.ref(epRef)} order by a.id desc limit 1)`,
  };
}

export interface MessageFilterForEndpoint {
  status?: number | undefined;
  channel?: string | undefined;
  tag?: string | undefined;
  eventTypes?: string[] | undefined;
  before?: number | undefined;
  after?: number | undefined;
}

export type AttemptedMessage = Selectable<MessagesTable> & DestinationStatus;

function likeElement(value: string): string {
  return `%${JSON.stringify(value).replace(/[!%_]/g, (c) => `!${c}`)}%`;
}

/** Messages attempted (or queued) to one endpoint, newest first, with their status there. */
export async function listAttemptedMessages(ctx: Context, appId: string, endpointId: string, page: Page, f: MessageFilterForEndpoint): Promise<AttemptedMessage[]> {
  const c = pairColumns("m.id", "e.id");
  const inner = ctx.store.db
    .selectFrom("messages as m")
    .innerJoin("endpoints as e", (j) => j.on("e.id", "=", endpointId))
    .selectAll("m")
    .select([c.jobStatus.as("job_status"), c.nextAttempt.as("next_attempt"), c.lastStatus.as("last_status")])
    .where("m.app_id", "=", appId);
  let q = ctx.store.db
    .selectFrom(inner.as("x"))
    .selectAll()
    .where((eb) => eb.or([eb("job_status", "is not", null), eb("last_status", "is not", null)]));
  if (f.status !== undefined) q = q.where(sql<boolean>`coalesce(job_status, last_status) = ${f.status}`);
  if (f.eventTypes && f.eventTypes.length > 0) q = q.where("event_type", "in", f.eventTypes);
  if (f.channel) q = q.where(sql<boolean>`channels like ${likeElement(f.channel)} escape '!'`);
  if (f.tag) q = q.where(sql<boolean>`tags like ${likeElement(f.tag)} escape '!'`);
  if (f.before !== undefined) q = q.where("created_at", "<", f.before);
  if (f.after !== undefined) q = q.where("created_at", ">", f.after);
  if (page.iterator) q = q.where("id", page.order === "ascending" ? ">" : "<", page.iterator);
  const rows = await q.orderBy("id", page.order === "ascending" ? "asc" : "desc").limit(page.limit + 1).execute();
  return rows.map(({ job_status, next_attempt, last_status, ...m }) => ({
    ...(m as Selectable<MessagesTable>),
    status: Number(job_status ?? last_status),
    nextAttempt: next_attempt === null ? null : Number(next_attempt),
  }));
}

export type AttemptedDestination = Selectable<EndpointsTable> & DestinationStatus;

/** Endpoints a message was attempted (or queued) to, with its status at each. */
export async function listAttemptedDestinations(ctx: Context, appId: string, msgId: string, page: Page): Promise<AttemptedDestination[]> {
  const c = pairColumns("m.id", "e.id");
  const inner = ctx.store.db
    .selectFrom("endpoints as e")
    .innerJoin("messages as m", (j) => j.on("m.id", "=", msgId))
    .selectAll("e")
    .select([c.jobStatus.as("job_status"), c.nextAttempt.as("next_attempt"), c.lastStatus.as("last_status")])
    .where("e.app_id", "=", appId);
  let q = ctx.store.db
    .selectFrom(inner.as("x"))
    .selectAll()
    .where((eb) => eb.or([eb("job_status", "is not", null), eb("last_status", "is not", null)]));
  if (page.iterator) q = q.where("id", page.order === "ascending" ? ">" : "<", page.iterator);
  const rows = await q.orderBy("id", page.order === "ascending" ? "asc" : "desc").limit(page.limit + 1).execute();
  return rows.map(({ job_status, next_attempt, last_status, ...e }) => ({
    ...(e as Selectable<EndpointsTable>),
    status: Number(job_status ?? last_status),
    nextAttempt: next_attempt === null ? null : Number(next_attempt),
  }));
}

export interface EndpointStats {
  success: number;
  pending: number;
  sending: number;
  fail: number;
  canceled: number;
}

/** Messages to one endpoint by status, over messages created in [since, until). */
export async function endpointStats(ctx: Context, appId: string, endpointId: string, since: number | undefined, until: number | undefined): Promise<EndpointStats> {
  const c = pairColumns("m.id", "e.id");
  let inner = ctx.store.db
    .selectFrom("messages as m")
    .innerJoin("endpoints as e", (j) => j.on("e.id", "=", endpointId))
    .select(sql<number | null>`coalesce(${c.jobStatus}, ${c.lastStatus})`.as("s"))
    .where("m.app_id", "=", appId);
  if (since !== undefined) inner = inner.where("m.created_at", ">=", since);
  if (until !== undefined) inner = inner.where("m.created_at", "<", until);
  const rows = await ctx.store.db
    .selectFrom(inner.as("x"))
    .select(["s", sql<number>`count(*)`.as("n")])
    .where("s", "is not", null)
    .groupBy("s")
    .execute();
  const out: EndpointStats = { success: 0, pending: 0, sending: 0, fail: 0, canceled: 0 };
  for (const r of rows) {
    const n = Number(r.n);
    if (Number(r.s) === STATUS_SUCCESS) out.success += n;
    else if (Number(r.s) === STATUS_PENDING) out.pending += n;
    else if (Number(r.s) === STATUS_SENDING) out.sending += n;
    else out.fail += n;
  }
  return out;
}

/**
 * Messages to one endpoint created in [since, until) whose delivery failed for good (no job
 * waiting, the latest attempt failed): what `recover` sends again.
 */
export async function failedMessageIds(ctx: Context, appId: string, endpointId: string, since: number, until: number | undefined): Promise<{ id: string; org_id: string }[]> {
  const c = pairColumns("m.id", "e.id");
  let inner = ctx.store.db
    .selectFrom("messages as m")
    .innerJoin("endpoints as e", (j) => j.on("e.id", "=", endpointId))
    .select(["m.id", "m.org_id", c.jobStatus.as("job_status"), c.lastStatus.as("last_status")])
    .where("m.app_id", "=", appId)
    // A message whose content expired or was expunged cannot be sent again (as in Svix).
    .where("m.payload", "<>", "")
    .where("m.created_at", ">=", since);
  if (until !== undefined) inner = inner.where("m.created_at", "<", until);
  return ctx.store.db
    .selectFrom(inner.as("x"))
    .select(["id", "org_id"])
    .where("job_status", "is", null)
    .where("last_status", "=", STATUS_FAIL)
    .orderBy("id")
    .execute();
}
