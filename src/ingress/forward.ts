import { applyForwardTransform } from "./forward-transform.js";
import type { FunctionRunner } from "../functions/runner.js";
import type { Context } from "../context/index.js";
import { ATTEMPT_FAIL, ATTEMPT_SUCCESS } from "../delivery/attempt.js";
import { USER_AGENT } from "../delivery/build-request.js";
import type { HttpSender, SendResult } from "../delivery/http-sender.js";
import { newId } from "../ids/index.js";
import type { AttemptInsert } from "../queue/complete-jobs.js";
import type { JobRow } from "../queue/types.js";
import { signatureHeader } from "../signing/standard-webhooks.js";
import { signingKeyFrom } from "../signing/endpoint-secret.js";
import { loadBucketOutputs, type ForwardTarget, type OutputCache } from "./output-cache.js";
import { storableText } from "../util/text.js";
import { openRequest, type StoredRequest } from "./stored-request.js";
import { SpanKind } from "../tracing/index.js";

/**
 * RFC 9110 §7.6.1 connection-specific headers, plus those the sender recomputes, plus `Expect`:
 * its 100-continue was answered on the caller's hop (RFC 9110 §10.1.1), and undici refuses to send
 * it, so a forward carrying it (curl sends it with larger bodies) failed on every attempt.
 */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "host", "content-length", "expect"]);

export type { ForwardTarget } from "./output-cache.js";

export interface ForwardRequest {
  method: string;
  url: string;
  /** The output's URL, without the caller's path suffix and query: what the attempt record shows. */
  recordedUrl: string;
  headers: Record<string, string>;
  body: Buffer;
}

function joinPath(base: URL, suffix: string): void {
  if (!suffix) return;
  // Dot segments (also written %2e) are resolved inside the suffix alone, clamped at its root:
  // appended as they came, URL parsing resolved `/../../admin` against the output's own path and
  // let any caller reach other paths of the destination host.
  const scratch = new URL("http://suffix.invalid/");
  scratch.pathname = suffix;
  base.pathname = `${base.pathname.replace(/\/+$/, "")}/${scratch.pathname.replace(/^\/+/, "")}`;
}

/**
 * The request forwarded to a URL output: same method, the path suffix and query appended to the
 * output's URL, the original headers minus hop-by-hop ones and minus the bucket's own
 * credentials (they authenticate the caller to Hookwarden, not to the destination), and the body
 * byte for byte. With `resign`, Standard Webhooks headers signed by the output's secret are added.
 */
export function buildForward(target: ForwardTarget, requestId: string, stored: StoredRequest, timestampSec: number): ForwardRequest {
  // The attempt record shows the output's own URL: the caller's path suffix and query are request
  // data, kept only sealed (and not at all by ephemeral buckets).
  const recordedUrl = normalizedUrl(target.output.url!);
  let url = recordedUrl;
  const query = forwardedQuery(target, stored);
  if (stored.suffix || query) {
    const u = new URL(recordedUrl);
    joinPath(u, stored.suffix);
    if (query) u.search = u.search.length > 1 ? `${u.search.slice(1)}&${query}` : query;
    url = u.toString();
  }
  const headers = forwardedHeaders(target, stored);
  const body = stored.body;
  if (target.output.resign === 1 && target.signingSecret) {
    headers["webhook-id"] = requestId;
    headers["webhook-timestamp"] = String(timestampSec);
    headers["webhook-signature"] = signatureHeader([signingKeyFrom(target.signingSecret)], requestId, timestampSec, body);
  }
  return { method: stored.method, url, recordedUrl, headers, body };
}

/** Output URLs as `URL` writes them, parsed once each (a forward with no suffix or query parses none). */
const normalized = new Map<string, string>();

function normalizedUrl(raw: string): string {
  let url = normalized.get(raw);
  if (url === undefined) {
    url = new URL(raw).toString();
    if (normalized.size >= 1024) normalized.clear();
    normalized.set(raw, url);
  }
  return url;
}

/**
 * The caller's query without the bucket's own `token` credential, every other pair as received:
 * re-serialising it (URLSearchParams) turned `%20` into `+` and `flag` into `flag=`, which
 * RFC 3986 §3.4 leaves to the destination to interpret.
 */
export function forwardedQuery(target: ForwardTarget, stored: StoredRequest): string {
  if (stored.query === "") return "";
  const dropToken = target.bucket.auth_type === "token";
  return stored.query
    .split("&")
    .filter((pair) => pair !== "" && !(dropToken && new URLSearchParams(pair).has("token")))
    .join("&");
}

/** The caller's headers minus hop-by-hop ones and the bucket's own credentials. */
export function forwardedHeaders(target: ForwardTarget, stored: StoredRequest): Record<string, string> {
  const connectionListed = new Set<string>();
  for (const [k, v] of stored.headers) if (k.toLowerCase() === "connection") for (const t of v.split(",")) connectionListed.add(t.trim().toLowerCase());
  // Names come from the caller: a plain object would turn `__proto__` into its prototype and
  // find `constructor` already there.
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, v] of stored.headers) {
    const name = k.toLowerCase();
    if (HOP_BY_HOP.has(name) || connectionListed.has(name)) continue;
    if (name === "authorization" && target.bucket.auth_type !== "none") continue;
    headers[name] = headers[name] === undefined ? v : `${headers[name]}, ${v}`;
  }
  headers["user-agent"] ??= USER_AGENT;
  return headers;
}

/**
 * Issue 14: the input's transformation, then the output's (each if set) shape the request before
 * it is built, or drop it: then nothing is sent and the attempt says why. Used by URL and agent
 * outputs, queued and ephemeral alike.
 */
export async function transformForward(
  ctx: Context,
  functions: FunctionRunner | undefined,
  job: Pick<JobRow, "org_id" | "scope_id" | "item_id" | "trigger_type">,
  target: ForwardTarget,
  stored: StoredRequest,
): Promise<{ stored: StoredRequest } | { early: { result: SendResult; attempt: AttemptInsert } }> {
  if (!functions) return { stored };
  const t = await applyForwardTransform(ctx, functions, target, stored);
  if (t.kind === "changed") return { stored: t.stored };
  if (t.kind === "none") return { stored };
  const detail = t.kind === "drop" ? `Dropped by the ${t.by}'s transformation; nothing was sent` : t.error.message;
  const result: SendResult = { ok: t.kind === "drop", statusCode: 0, headers: {}, body: "", durationMs: 0, errorCode: t.kind === "drop" ? "E_FUNCTION_CANCELLED" : t.error.code, errorDetail: detail };
  const url = target.output.type === "agent" ? "agent" : (target.output.url ?? "");
  return { early: { result, attempt: forwardAttempt(job, target, result, url, target.output.tls_verify === 1, ctx.clock.now()) } };
}

/**
 * The span of one forward, URL or agent output alike: a child of the ingress span stored with the
 * request (worker, ephemeral and wait mode alike). `traceparent` is what the destination is sent
 * to join the trace; `done` ends the span with the attempt's outcome.
 */
export function forwardSpan(
  ctx: Context,
  job: Pick<JobRow, "org_id" | "scope_id" | "item_id">,
  target: ForwardTarget,
  stored: StoredRequest,
  outputType?: string,
): { traceparent: string | undefined; done: (out: { result: SendResult; attempt: AttemptInsert }) => { result: SendResult; attempt: AttemptInsert } } {
  const span = ctx.tracing?.start("hookwarden.forward", SpanKind.CLIENT, stored.trace, {
    "hookwarden.org.id": job.org_id,
    "hookwarden.bucket.id": job.scope_id,
    "hookwarden.request.id": job.item_id,
    "hookwarden.output.id": target.output.id,
    ...(outputType !== undefined ? { "hookwarden.output.type": outputType } : {}),
  });
  return {
    traceparent: span?.traceparent,
    done: (out) => {
      span?.end({ "hookwarden.attempt.id": out.attempt.id, "http.response.status_code": out.result.statusCode }, out.result.ok ? null : (out.result.errorCode ?? "E_HTTP_STATUS"));
      return out;
    },
  };
}

/** One forward attempt to a URL output, described as an attempt row (no query, no body kept). */
export async function performForward(
  ctx: Context,
  sender: HttpSender,
  job: Pick<JobRow, "org_id" | "scope_id" | "item_id" | "trigger_type">,
  target: ForwardTarget,
  stored: StoredRequest,
  signal?: AbortSignal,
  answerLimit?: number,
  functions?: FunctionRunner,
): Promise<{ result: SendResult; attempt: AttemptInsert }> {
  const { config, clock } = ctx;
  const { traceparent, done } = forwardSpan(ctx, job, target, stored);
  const shaped = await transformForward(ctx, functions, job, target, stored);
  if ("early" in shaped) return done(shaped.early);
  stored = shaped.stored;
  const fwd = buildForward(target, job.item_id, stored, Math.floor(clock.now() / 1000));
  // The caller's own `traceparent` (forwarded with its other headers) is replaced by this span's:
  // the destination joins the same trace, one hop further down.
  if (traceparent !== undefined) fwd.headers.traceparent = traceparent;
  const tlsVerify = target.output.tls_verify === 1;
  const result = await sender.send({ url: fwd.url, method: fwd.method, headers: fwd.headers, body: fwd.body, tlsVerify, timeoutMs: config.requestTimeout, ...(signal ? { signal } : {}), ...(answerLimit !== undefined ? { answerLimit } : {}) });
  return done({ result, attempt: forwardAttempt(job, target, result, fwd.recordedUrl, tlsVerify, clock.now()) });
}

/**
 * The attempt row of one forward (URL or agent output): no query and no request body, and for
 * ephemeral buckets not even the destination's answer, only status and time.
 */
export function forwardAttempt(
  job: Pick<JobRow, "org_id" | "scope_id" | "item_id" | "trigger_type">,
  target: ForwardTarget,
  result: SendResult,
  url: string,
  tlsVerify: boolean,
  now: number,
): AttemptInsert {
  return {
    id: newId("atmpt"),
    org_id: job.org_id,
    scope_id: job.scope_id,
    item_id: job.item_id,
    destination_id: target.output.id,
    kind: "forward",
    url,
    status: result.ok ? ATTEMPT_SUCCESS : ATTEMPT_FAIL,
    response_status_code: result.statusCode,
    response: target.bucket.ephemeral === 1 ? "" : storableText(result.statusCode !== 0 ? result.body : (result.errorDetail ?? "")),
    duration_ms: result.durationMs,
    trigger_type: job.trigger_type,
    error_code: result.errorCode,
    tls_verify: tlsVerify ? 1 : 0,
    created_at: now,
    request: null,
  };
}

/**
 * Requests (decrypted), outputs and buckets of a batch of forward jobs, in one round trip; a
 * forward job's `scope_id` is its bucket, `item_id` its request, `destination_id` its output.
 * `known`: requests the caller already holds in the clear (handed over by the intake).
 * `outputs`: the node's cache of bucket outputs, when it has one.
 */
export async function loadForwardContexts(
  ctx: Context,
  jobs: readonly JobRow[],
  known?: ReadonlyMap<string, StoredRequest>,
  outputs?: OutputCache,
): Promise<{ requests: Map<string, StoredRequest>; targets: Map<string, ForwardTarget> }> {
  const { store, keyring } = ctx;
  const reqIds = [...new Set(jobs.map((j) => j.item_id))].filter((id) => !known?.has(id));
  const bucketIds = [...new Set(jobs.map((j) => j.scope_id))];
  const [reqs, byBucket] = await Promise.all([
    reqIds.length === 0 ? [] : store.db.selectFrom("inbound_requests").select(["id", "input_id", "data_enc", "trace_context"]).where("id", "in", reqIds).execute(),
    outputs ? outputs.of(bucketIds) : loadBucketOutputs(ctx, bucketIds),
  ]);
  const requests = new Map<string, StoredRequest>();
  for (const r of reqs) {
    if (r.data_enc === null) continue;
    const stored: StoredRequest = { ...openRequest(keyring, r.id, r.data_enc), inputId: r.input_id };
    if (r.trace_context !== null) stored.trace = r.trace_context;
    requests.set(r.id, stored);
  }
  if (known) for (const job of jobs) if (known.has(job.item_id)) requests.set(job.item_id, known.get(job.item_id)!);
  const targets = new Map<string, ForwardTarget>();
  for (const job of jobs) {
    const target = byBucket.get(job.scope_id)?.targets.get(job.destination_id);
    if (target) targets.set(job.destination_id, target);
  }
  return { requests, targets };
}
