import type { Selectable } from "kysely";
import type { ApplicationRow } from "../applications/index.js";
import type { Context } from "../context/index.js";
import { HookwardenError } from "../errors/index.js";
import type { AttemptsTable } from "../store/schema.js";
import type { Page } from "../store/page.js";

export type AttemptRow = Selectable<AttemptsTable>;

export interface AttemptFilter {
  msgId?: string;
  endpointId?: string;
  status?: number | undefined;
  before?: number | undefined;
  after?: number | undefined;
}

/**
 * Every attempt is kept; newest first, as Svix lists them. `ownerId` is the application (or, for
 * forwards of inbound requests, the bucket) the attempts belong to.
 */
export async function listAttempts(ctx: Context, ownerId: string, page: Page, filter: AttemptFilter): Promise<AttemptRow[]> {
  let q = ctx.store.db.selectFrom("attempts").selectAll().where("scope_id", "=", ownerId);
  if (filter.msgId !== undefined) q = q.where("item_id", "=", filter.msgId);
  if (filter.endpointId !== undefined) q = q.where("destination_id", "=", filter.endpointId);
  if (filter.status !== undefined) q = q.where("status", "=", filter.status);
  if (filter.before !== undefined) q = q.where("created_at", "<", filter.before);
  if (filter.after !== undefined) q = q.where("created_at", ">", filter.after);
  if (page.iterator) q = q.where("id", page.order === "ascending" ? ">" : "<", page.iterator);
  return q.orderBy("id", page.order === "ascending" ? "asc" : "desc").limit(page.limit + 1).execute();
}

export async function findAttempt(ctx: Context, app: ApplicationRow, msgId: string, attemptId: string): Promise<AttemptRow> {
  const row = await ctx.store.db
    .selectFrom("attempts")
    .selectAll()
    .where("scope_id", "=", app.id)
    .where("item_id", "=", msgId)
    .where("id", "=", attemptId)
    .executeTakeFirst();
  if (!row) throw HookwardenError.notFound("Attempt");
  return row;
}
