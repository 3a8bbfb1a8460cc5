import { sql, type Selectable } from "kysely";
import type { ApplicationRow } from "../applications/index.js";
import type { Context } from "../context/index.js";
import { HookwardenError } from "../errors/index.js";
import type { MessagesTable } from "../store/schema.js";
import type { Page } from "../store/page.js";

export type MessageRow = Selectable<MessagesTable>;

export async function findMessage(ctx: Context, app: ApplicationRow, idOrEventId: string): Promise<MessageRow> {
  const row = await ctx.store.db
    .selectFrom("messages")
    .selectAll()
    .where("app_id", "=", app.id)
    .where((eb) => eb.or([eb("id", "=", idOrEventId), eb("event_id", "=", idOrEventId)]))
    .orderBy("id", "desc")
    .executeTakeFirst();
  if (!row) throw HookwardenError.notFound("Message");
  return row;
}

export interface MessageFilter {
  eventTypes?: string[] | undefined;
  channel?: string | undefined;
  tag?: string | undefined;
  before?: number | undefined;
  after?: number | undefined;
}

/** Newest first by default, as in Svix. */
export async function listMessages(ctx: Context, app: ApplicationRow, page: Page, filter: MessageFilter): Promise<MessageRow[]> {
  let q = ctx.store.db.selectFrom("messages").selectAll().where("app_id", "=", app.id);
  if (filter.eventTypes && filter.eventTypes.length > 0) q = q.where("event_type", "in", filter.eventTypes);
  if (filter.channel) q = q.where(sql<boolean>`channels like ${containsElement(filter.channel)} escape '!'`);
  if (filter.tag) q = q.where(sql<boolean>`tags like ${containsElement(filter.tag)} escape '!'`);
  if (filter.before !== undefined) q = q.where("created_at", "<", filter.before);
  if (filter.after !== undefined) q = q.where("created_at", ">", filter.after);
  if (page.iterator) q = q.where("id", page.order === "ascending" ? ">" : "<", page.iterator);
  return q.orderBy("id", page.order === "ascending" ? "asc" : "desc").limit(page.limit + 1).execute();
}

/**
 * A LIKE pattern matching a JSON string array that holds `value` exactly: the element is matched
 * with its quotes, and LIKE's own wildcards (`%`, `_`, legal in channels and tags) are escaped so
 * `a_b` does not match `axb`. Same SQL on both dialects.
 */
function containsElement(value: string): string {
  return `%${JSON.stringify(value).replace(/[!%_]/g, (c) => `!${c}`)}%`;
}
