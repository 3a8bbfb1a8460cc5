import type { ApplicationRow } from "../applications/index.js";
import type { EndpointRow } from "../endpoints/index.js";
import type { EndpointRef, LifecycleEvents } from "../events/index.js";
import type { MessageRow } from "../messages/index.js";
import type { VerificationBursts } from "./verification-bursts.js";

/** Svix's operational event types, then Hookwarden's security signals. */
export const OPERATIONAL_EVENT_TYPES = [
  "endpoint.created",
  "endpoint.updated",
  "endpoint.deleted",
  "endpoint.disabled",
  "message.attempt.exhausted",
  "message.attempt.failing",
  "message.attempt.recovered",
  "ingress.verification_failing",
  "endpoint.tls_verify_disabled",
  "secret.rotated",
  "incident.paused",
  "incident.resumed",
  "incident.rotated",
] as const;
export type OperationalEventType = (typeof OPERATIONAL_EVENT_TYPES)[number];

/** One operational event, addressed to one organisation (its `data` is the webhook's `data`). */
export interface OperationalEvent {
  orgId: string;
  type: OperationalEventType;
  data: Record<string, unknown>;
}

/** What a mapping may read. Lookups answer `undefined` for rows that are gone. */
export interface MapContext {
  now: number;
  app(appId: string): Promise<ApplicationRow | undefined>;
  endpoint(endpointId: string): Promise<EndpointRow | undefined>;
  message(msgId: string): Promise<MessageRow | undefined>;
  bursts: VerificationBursts;
  verificationWindowMs: number;
}

export interface OperationalRow<K extends keyof LifecycleEvents = keyof LifecycleEvents> {
  on: K;
  /** The operational event this bus event becomes, or `undefined` (not every occurrence is one). */
  map(payload: LifecycleEvents[K], m: MapContext): Promise<OperationalEvent | undefined> | OperationalEvent | undefined;
}

/** Keeps each row's payload type tied to its bus event while the table stays one array. */
function row<K extends keyof LifecycleEvents>(on: K, map: OperationalRow<K>["map"]): OperationalRow {
  return { on, map } as unknown as OperationalRow;
}

/**
 * Svix sends `message.attempt.failing` on a message's fourth failed attempt to an endpoint, and
 * `message.attempt.recovered` on a success after that.
 */
export const FAILING_AFTER_ATTEMPTS = 4;

const iso = (ms: number | null | undefined) => (ms == null ? null : new Date(ms).toISOString());

/**
 * The application's part of a payload, or `undefined` for the operational application itself:
 * its own deliveries failing must not raise operational events (they would feed themselves).
 */
async function appPart(m: MapContext, appId: string): Promise<{ app: ApplicationRow; data: { appId: string; appUid: string | null } } | undefined> {
  const app = await m.app(appId);
  if (!app || app.internal === 1) return undefined;
  return { app, data: { appId: app.id, appUid: app.uid } };
}

async function endpointEvent(type: OperationalEventType, e: EndpointRef, m: MapContext): Promise<OperationalEvent | undefined> {
  const a = await appPart(m, e.appId);
  if (!a) return undefined;
  return { orgId: a.app.org_id, type, data: { ...a.data, endpointId: e.endpointId, endpointUid: e.endpointUid } };
}

async function attemptEvent(type: OperationalEventType, e: LifecycleEvents["delivery:attempted"], m: MapContext): Promise<OperationalEvent | undefined> {
  const a = await appPart(m, e.appId);
  if (!a) return undefined;
  const msg = await m.message(e.msgId);
  return {
    orgId: a.app.org_id,
    type,
    data: {
      ...a.data,
      msgId: e.msgId,
      msgEventId: msg?.event_id ?? null,
      endpointId: e.endpointId,
      lastAttempt: { id: e.attemptId, timestamp: iso(m.now), responseStatusCode: e.statusCode },
    },
  };
}

/**
 * Bus event → operational event. To add one: a row here, its name in OPERATIONAL_EVENT_TYPES,
 * its payload in README ("Operational webhooks"). Each row names the organisation from the rows
 * it reads (never from the caller), which is what keeps one tenant's events from another's
 * endpoints. Synchronous calls (`attempt` absent) are never failing or exhausted: they are not
 * retried by design.
 */
export const OPERATIONAL_ROWS: OperationalRow[] = [
  row("endpoint:created", (e, m) => endpointEvent("endpoint.created", e, m)),
  row("endpoint:updated", (e, m) => endpointEvent("endpoint.updated", e, m)),
  row("endpoint:deleted", (e, m) => endpointEvent("endpoint.deleted", e, m)),
  row("endpoint:disabled", async (e, m) => {
    const ep = await m.endpoint(e.endpointId);
    if (!ep) return undefined;
    const a = await appPart(m, ep.app_id);
    if (!a) return undefined;
    return {
      orgId: ep.org_id,
      type: "endpoint.disabled",
      data: { ...a.data, endpointId: ep.id, endpointUid: ep.uid, failSince: iso(ep.failing_since), trigger: e.trigger, reason: e.reason },
    };
  }),
  row("delivery:attempted", (e, m) =>
    e.outcome === "failure" && e.willRetry && e.attempt === FAILING_AFTER_ATTEMPTS - 1 ? attemptEvent("message.attempt.failing", e, m) : undefined,
  ),
  row("delivery:attempted", (e, m) => (e.outcome === "failure" && !e.willRetry && e.attempt !== undefined ? attemptEvent("message.attempt.exhausted", e, m) : undefined)),
  row("delivery:attempted", (e, m) =>
    e.outcome === "success" && e.attempt !== undefined && e.attempt >= FAILING_AFTER_ATTEMPTS ? attemptEvent("message.attempt.recovered", e, m) : undefined,
  ),
  row("ingress:rejected", (e, m) => {
    if (e.code !== "E_SIGNATURE_INVALID" || e.orgId === null || e.bucketId === null) return undefined;
    const burst = m.bursts.hit(e.inputId, m.now);
    if (!burst) return undefined;
    return {
      orgId: e.orgId,
      type: "ingress.verification_failing",
      data: { bucketId: e.bucketId, inputId: e.inputId, failures: burst.failures, windowSeconds: Math.round(m.verificationWindowMs / 1000), since: iso(burst.since) },
    };
  }),
  row("endpoint:tls-verify-disabled", (e, m) => endpointEvent("endpoint.tls_verify_disabled", e, m)),
  row("secret:rotated", async (e, m) => {
    const base = await endpointEvent("secret.rotated", e, m);
    if (!base) return undefined;
    return { ...base, data: { ...base.data, kind: e.kind, graceUntil: iso(e.graceUntil) } };
  }),
  // Incident response (src/incident): who paused, resumed or rotated what; counts, never values.
  row("incident:paused", (e, m) => ({ orgId: e.orgId, type: "incident.paused", data: { scope: e.scope, targetId: e.targetId, actor: e.actor, at: iso(e.at ?? m.now) } })),
  row("incident:resumed", (e, m) => ({ orgId: e.orgId, type: "incident.resumed", data: { scope: e.scope, targetId: e.targetId, actor: e.actor, at: iso(e.at ?? m.now) } })),
  row("incident:rotated", (e, m) => ({
    orgId: e.orgId,
    type: "incident.rotated",
    data: { appId: e.appId, endpoints: e.endpoints, tokens: e.tokens, overlapSeconds: Math.round(e.overlapMs / 1000), actor: e.actor, at: iso(e.at ?? m.now) },
  })),
];
