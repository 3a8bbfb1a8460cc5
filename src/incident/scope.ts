import type { IncidentScopeKind } from "../events/index.js";
import { HookwardenError } from "../errors/index.js";
import type { Db } from "../store/index.js";

/** What an incident step names: the organisation itself, or one application or bucket in it. */
export interface IncidentScope {
  orgId: string;
  kind: IncidentScopeKind;
  /** The scope's own id: `app_…`, `bkt_…`, or the organisation's `org_…`. */
  id: string;
}

/**
 * Resolves `--app` (id or uid) or `--bucket` (id or name) inside `orgId`; neither means the whole
 * organisation. Another organisation's application answers 404, as if it did not exist.
 */
export async function resolveScope(db: Db, orgId: string, target: { app?: string | undefined; bucket?: string | undefined }): Promise<IncidentScope> {
  if (target.app !== undefined && target.bucket !== undefined) throw new HookwardenError("E_VALIDATION", 422, "Name an application or a bucket, not both");
  if (target.app !== undefined) {
    const app = target.app;
    const row = await db
      .selectFrom("applications")
      .select("id")
      .where("org_id", "=", orgId)
      .where((eb) => eb.or([eb("id", "=", app), eb("uid", "=", app)]))
      .executeTakeFirst();
    if (!row) return stalePause(db, orgId, "app", app, "Application");
    return { orgId, kind: "app", id: row.id };
  }
  if (target.bucket !== undefined) {
    const bucket = target.bucket;
    const row = await db
      .selectFrom("buckets")
      .select("id")
      .where("org_id", "=", orgId)
      .where((eb) => eb.or([eb("id", "=", bucket), eb("name", "=", bucket)]))
      .executeTakeFirst();
    if (!row) return stalePause(db, orgId, "bucket", bucket, "Bucket");
    return { orgId, kind: "bucket", id: row.id };
  }
  return { orgId, kind: "org", id: orgId };
}

/**
 * An application or bucket deleted while paused leaves its pause row (it holds nothing any more):
 * still named by its id, so `resume` can clear it from the list.
 */
async function stalePause(db: Db, orgId: string, kind: IncidentScopeKind, id: string, what: string): Promise<IncidentScope> {
  const row = await db.selectFrom("incident_pauses").select("id").where("id", "=", id).where("org_id", "=", orgId).where("kind", "=", kind).executeTakeFirst();
  if (!row) throw HookwardenError.notFound(what);
  return { orgId, kind, id: row.id };
}
