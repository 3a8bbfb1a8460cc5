import type { Selectable } from "kysely";
import type { Context } from "../context/index.js";
import { HookwardenError } from "../errors/index.js";
import { isUniqueViolation } from "../store/errors.js";
import type { EventTypesTable } from "../store/schema.js";
import type { Page } from "../store/page.js";
import type { Patch } from "../util/patch.js";

export type EventTypeRow = Selectable<EventTypesTable>;

export interface EventTypeInput {
  description: string;
  archived?: boolean | undefined;
  deprecated?: boolean | undefined;
  schemas?: Record<string, unknown> | null | undefined;
  featureFlag?: string | null | undefined;
  groupName?: string | null | undefined;
}

function columns(input: Patch<EventTypeInput>) {
  return {
    ...(input.description !== undefined ? { description: input.description } : {}),
    ...(input.archived !== undefined ? { archived: input.archived ? 1 : 0 } : {}),
    ...(input.deprecated !== undefined ? { deprecated: input.deprecated ? 1 : 0 } : {}),
    ...(input.schemas !== undefined ? { schemas: input.schemas === null ? null : JSON.stringify(input.schemas) } : {}),
    ...(input.featureFlag !== undefined ? { feature_flag: input.featureFlag } : {}),
    ...(input.groupName !== undefined ? { group_name: input.groupName } : {}),
  };
}

export async function findEventType(ctx: Context, orgId: string, name: string, customerView = false): Promise<EventTypeRow> {
  const row = await ctx.store.db.selectFrom("event_types").selectAll().where("org_id", "=", orgId).where("name", "=", name).executeTakeFirst();
  if (!row || (customerView && (row.feature_flag !== null || row.archived === 1))) throw HookwardenError.notFound("Event type");
  return row;
}

export async function createEventType(ctx: Context, orgId: string, name: string, input: EventTypeInput): Promise<EventTypeRow> {
  const now = ctx.clock.now();
  const row: EventTypeRow = {
    org_id: orgId,
    name,
    description: input.description,
    archived: input.archived ? 1 : 0,
    deprecated: input.deprecated ? 1 : 0,
    schemas: input.schemas ? JSON.stringify(input.schemas) : null,
    feature_flag: input.featureFlag ?? null,
    group_name: input.groupName ?? null,
    created_at: now,
    updated_at: now,
  };
  try {
    await ctx.store.db.insertInto("event_types").values(row).execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw new HookwardenError("E_CONFLICT", 409, "An event type with this name already exists");
    throw err;
  }
  return row;
}

/**
 * A page of the catalogue. `customerView` (an app-portal token, as Svix's portal): no archived
 * types and none behind a feature flag (the portal is given no flags).
 */
export async function listEventTypes(ctx: Context, orgId: string, page: Page, includeArchived: boolean, customerView = false): Promise<EventTypeRow[]> {
  let q = ctx.store.db.selectFrom("event_types").selectAll().where("org_id", "=", orgId);
  if (!includeArchived || customerView) q = q.where("archived", "=", 0);
  if (customerView) q = q.where("feature_flag", "is", null);
  if (page.iterator) q = q.where("name", page.order === "ascending" ? ">" : "<", page.iterator);
  return q.orderBy("name", page.order === "ascending" ? "asc" : "desc").limit(page.limit + 1).execute();
}

/** PUT semantics as in Svix: updates the event type, creating it when it does not exist yet. */
export async function upsertEventType(ctx: Context, orgId: string, name: string, input: EventTypeInput): Promise<{ row: EventTypeRow; created: boolean }> {
  const updated = await patchEventType(ctx, orgId, name, input).catch((err: unknown) => {
    if (err instanceof HookwardenError && err.code === "E_NOT_FOUND") return undefined;
    throw err;
  });
  if (updated) return { row: updated, created: false };
  return { row: await createEventType(ctx, orgId, name, input), created: true };
}

export async function patchEventType(ctx: Context, orgId: string, name: string, input: Patch<EventTypeInput>): Promise<EventTypeRow> {
  const res = await ctx.store.db
    .updateTable("event_types")
    .set({ ...columns(input), updated_at: ctx.clock.now() })
    .where("org_id", "=", orgId)
    .where("name", "=", name)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) throw HookwardenError.notFound("Event type");
  return findEventType(ctx, orgId, name);
}

/** Archives (Svix's default) or, with `expunge`, deletes the event type. */
export async function deleteEventType(ctx: Context, orgId: string, name: string, expunge: boolean): Promise<void> {
  const q = expunge
    ? ctx.store.db.deleteFrom("event_types").where("org_id", "=", orgId).where("name", "=", name)
    : ctx.store.db.updateTable("event_types").set({ archived: 1, updated_at: ctx.clock.now() }).where("org_id", "=", orgId).where("name", "=", name);
  const res = await q.executeTakeFirst();
  const n = "numDeletedRows" in res ? res.numDeletedRows : res.numUpdatedRows;
  if (Number(n) === 0) throw HookwardenError.notFound("Event type");
}
