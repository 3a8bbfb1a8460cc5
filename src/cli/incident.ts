import { AuditLog } from "../audit/index.js";
import { Publisher } from "../messages/publisher.js";
import { OperationalWebhooks } from "../operational/index.js";
import { findOrgByName } from "../auth/tokens.js";
import { systemClock } from "../clock/index.js";
import type { Config } from "../config/index.js";
import { parseDuration } from "../config/duration.js";
import type { Context } from "../context/index.js";
import { HookwardenError } from "../errors/index.js";
import { EventBus } from "../events/index.js";
import { cliActor } from "../incident/actor.js";
import { listPauses, pause, resume } from "../incident/pauses.js";
import { MAX_OVERLAP_MS, rotateCredentials } from "../incident/rotate.js";
import { resolveScope, type IncidentScope } from "../incident/scope.js";
import { createLogger } from "../logger/index.js";
import { JobQueue } from "../queue/job-queue.js";
import { openStore } from "../store/index.js";
import { loadKeyring } from "../vault/keyring.js";

type Out = { write(text: string): unknown };

export interface Target {
  org: string;
  app?: string | undefined;
  bucket?: string | undefined;
}

const when = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

/**
 * A context for one CLI step. A running server learns of the step from the database (pauses
 * within its poll interval), the audit log, and the operational event committed to its queue.
 */
async function withContext<T>(config: Config, fn: (ctx: Context, audit: AuditLog) => Promise<T>): Promise<T> {
  const logger = createLogger({ level: "warn", destination: process.stderr, format: "json" });
  const keyring = loadKeyring(config, logger);
  const store = await openStore(config, logger);
  const ctx: Context = Object.freeze({ config, clock: systemClock, logger, store, queue: new JobQueue(store), keyring, events: new EventBus() });
  const audit = new AuditLog(store, logger);
  // The step's operational event (incident.*) is committed here as a message of the organisation's
  // operational application; a running server's workers deliver it from the queue.
  const operational = new OperationalWebhooks(ctx, new Publisher(ctx));
  try {
    return await fn(ctx, audit);
  } finally {
    await audit.flush();
    await operational.drain();
    operational.stop();
    await store.close();
  }
}

async function orgIdOf(ctx: Context, name: string): Promise<string> {
  const orgId = await findOrgByName(ctx.store.db, name);
  if (!orgId) throw new HookwardenError("E_NOT_FOUND", 404, `No organisation named "${name}" (hookwarden org list shows them)`);
  return orgId;
}

async function scopeOf(ctx: Context, t: Target): Promise<IncidentScope> {
  try {
    return await resolveScope(ctx.store.db, await orgIdOf(ctx, t.org), { app: t.app, bucket: t.bucket });
  } catch (err) {
    if (err instanceof HookwardenError && err.code === "E_NOT_FOUND" && (t.app !== undefined || t.bucket !== undefined)) {
      throw new HookwardenError("E_NOT_FOUND", 404, `No ${t.app !== undefined ? `application "${t.app}"` : `bucket "${t.bucket}"`} in organisation "${t.org}"`);
    }
    throw err;
  }
}

function describe(scope: IncidentScope, org: string): string {
  return scope.kind === "org" ? `every delivery of organisation "${org}"` : `${scope.kind === "app" ? "application" : "bucket"} ${scope.id} of organisation "${org}"`;
}

/** The audit entry of a CLI step: the actor is the OS user (`cli:<user>`), no token, no address. */
async function record(ctx: Context, audit: AuditLog, orgId: string, action: string, resourceId: string, actor: string): Promise<void> {
  await audit.append({ orgId, tokenId: null, tokenName: actor, action: `CLI incident ${action}`, resourceId, status: 200, clientIp: null, at: ctx.clock.now() });
}

/** `hookwarden incident pause --org NAME [--app APP | --bucket BUCKET]` */
export async function incidentPause(config: Config, t: Target, out: Out = process.stdout): Promise<void> {
  const line = await withContext(config, async (ctx, audit) => {
    const scope = await scopeOf(ctx, t);
    const actor = cliActor();
    const { created } = await pause(ctx, scope, actor);
    if (created) await record(ctx, audit, scope.orgId, "pause", scope.id, actor);
    return created
      ? `paused ${describe(scope, t.org)}: new deliveries wait in the queue (nothing is dropped; inbound requests are still accepted). Running servers stop handing them over within their poll interval. Undo: hookwarden incident resume --org ${t.org}${t.app ? ` --app ${t.app}` : ""}${t.bucket ? ` --bucket ${t.bucket}` : ""}`
      : `${describe(scope, t.org)} was already paused`;
  });
  out.write(`${line}\n`);
}

/** `hookwarden incident resume --org NAME [--app APP | --bucket BUCKET]` */
export async function incidentResume(config: Config, t: Target, out: Out = process.stdout): Promise<void> {
  const line = await withContext(config, async (ctx, audit) => {
    const scope = await scopeOf(ctx, t);
    const actor = cliActor();
    const resumed = await resume(ctx, scope, actor);
    if (resumed) await record(ctx, audit, scope.orgId, "resume", scope.id, actor);
    return resumed ? `resumed ${describe(scope, t.org)}: the deliveries it held are due now` : `${describe(scope, t.org)} was not paused (hookwarden incident list shows what is)`;
  });
  out.write(`${line}\n`);
}

/** `hookwarden incident list [--org NAME]` */
export async function incidentList(config: Config, org: string | undefined, out: Out = process.stdout): Promise<void> {
  const rows = await withContext(config, async (ctx) => listPauses(ctx.store.db, org === undefined ? undefined : await orgIdOf(ctx, org)));
  if (rows.length === 0) return void out.write("nothing is paused\n");
  const table = [["PAUSED", "KIND", "ORG", "BY", "SINCE"], ...rows.map((r) => [r.id, r.kind, r.orgId, r.actor, when(r.createdAt)])];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  out.write(table.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n") + "\n");
}

/** `--overlap`: a duration (`24h`, `90m`, `0`), at most 30 days. */
export function parseOverlap(text: string): number {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (err) {
    throw new HookwardenError("E_VALIDATION", 422, `--overlap: ${(err as Error).message}`);
  }
  if (ms > MAX_OVERLAP_MS) throw new HookwardenError("E_VALIDATION", 422, "--overlap must be at most 30d");
  return ms;
}

/**
 * `hookwarden incident rotate --org NAME [--app APP] [--overlap 24h]`: the new values go to stdout
 * once (they are kept only sealed or hashed); the audit entry and the event carry counts only.
 */
export async function incidentRotate(config: Config, t: { org: string; app?: string | undefined; overlap?: string | undefined }, out: Out = process.stdout, err: Out = process.stderr): Promise<void> {
  const overlapMs = t.overlap === undefined ? config.rotationOverlap : parseOverlap(t.overlap);
  const r = await withContext(config, async (ctx, audit) => {
    const scope = await scopeOf(ctx, { org: t.org, app: t.app });
    const actor = cliActor();
    const rotation = await rotateCredentials(ctx, scope.orgId, scope.kind === "app" ? scope.id : null, overlapMs, actor);
    await record(ctx, audit, scope.orgId, "rotate", scope.id, actor);
    return rotation;
  });
  const lines: string[] = [];
  for (const e of r.endpoints) lines.push(`endpoint ${e.id} (app ${e.appId}) secret ${e.secret.reveal()}`);
  for (const tok of r.tokens) lines.push(`token ${tok.id} "${tok.name}" (${tok.scope}${tok.appId ? `, app ${tok.appId}` : ""}, replaces ${tok.replaces}) ${tok.token.reveal()}`);
  out.write(lines.length > 0 ? `${lines.join("\n")}\n` : "");
  err.write(
    `rotated ${r.endpoints.length} endpoint signing secret(s) and ${r.tokens.length} API token(s). The new values above are shown only this once: store them now. ` +
      (overlapMs === 0 ? "The old ones stopped working now (servers drop a cached token within 5 s).\n" : `The old ones keep working until ${when(r.oldExpireAt)}.\n`),
  );
}
