import type { Context } from "../context/index.js";
import type { EndpointRow } from "../endpoints/index.js";
import { HookwardenError } from "../errors/index.js";
import { newId } from "../ids/index.js";
import type { MessageRow } from "../messages/index.js";
import type { AttemptInsert } from "../queue/complete-jobs.js";
import { Redactor } from "../redaction/index.js";
import { buildRequest, type BuiltRequest } from "./build-request.js";
import { isCustomised, type EndpointContext } from "./endpoint-context.js";
import { storableText } from "../util/text.js";
import type { HttpSender, SendResult } from "./http-sender.js";
import type { DestinationRegistry } from "../destinations/registry.js";
import { isHttpUrl, sendToDestination } from "./destination-send.js";
import { applyEndpointTransform, type TransformOutcome } from "./endpoint-transform.js";
import type { FunctionRunner } from "../functions/runner.js";

export const ATTEMPT_SUCCESS = 0;
export const ATTEMPT_FAIL = 2;

export interface AttemptResult {
  result: SendResult;
  attempt: AttemptInsert;
  built: BuiltRequest | undefined;
}

/**
 * One attempt, start to finish: build the request (template, auth, encryption, signature), send
 * it, and describe it as an attempt row in which every secret the request carried is masked.
 * A template that cannot render is a failed attempt (`E_TEMPLATE_RENDER`), not a crash.
 */
export async function performAttempt(
  ctx: Context,
  sender: HttpSender,
  job: { orgId: string; appId: string; triggerType: number },
  ep: EndpointRow,
  msg: MessageRow,
  epCtx: EndpointContext,
  signal?: AbortSignal,
  destinations?: DestinationRegistry,
  functions?: FunctionRunner,
  traceparent?: string,
): Promise<AttemptResult> {
  const { config, clock, logger } = ctx;
  const timestamp = Math.floor(clock.now() / 1000);
  const tlsVerify = ep.tls_verify === 1;
  let built: BuiltRequest | undefined;
  let result: SendResult;
  // Broker destinations (src/destinations/) take their credentials from the vault, not headers.
  const broker = !isHttpUrl(ep.url);
  let masked: string[] = [];
  let transform: TransformOutcome = { kind: "none" };
  try {
    if (epCtx.broken) throw epCtx.broken;
    if (epCtx.unreadable && epCtx.unreadable.length > 0) {
      throw new HookwardenError(
        "E_MASTER_KEY",
        500,
        `Vault secret(s) ${epCtx.unreadable.join(", ")} failed to decrypt: the stored value was not sealed for this application and name, or under a master key this server has. Replace the value (PUT .../secret/NAME) or start with the previous key`,
      );
    }
    // Issue 14: the endpoint's transformation runs first, so the signature covers its final body.
    if (functions) transform = await applyEndpointTransform(ctx, functions, ep, msg, epCtx.transformation);
    if (transform.kind === "error") throw transform.error;
    // A broker's credentials come from the vault through its connection, not as headers.
    const integration = broker ? { integration: { ...epCtx.integration, auth: null } } : {};
    if (transform.kind === "cancel") {
      const detail = "Cancelled by the endpoint's transformation; nothing was sent";
      result = { ok: true, statusCode: 0, headers: {}, body: detail, durationMs: 0, errorCode: "E_FUNCTION_CANCELLED", errorDetail: detail };
    } else if (transform.kind === "changed") {
      const t = transform;
      // The kind of destination is the endpoint's: a function may move an HTTP delivery to another
      // URL, not turn it into a broker publish (or back).
      if (isHttpUrl(t.url) === broker) throw new HookwardenError("E_FUNCTION_OUTPUT_INVALID", 422, "A transformation cannot change the kind of destination (HTTP or broker) of its endpoint");
      const b = buildRequest({ ep: { ...ep, url: t.url }, msg: { ...msg, payload: t.payload }, ...epCtx, ...integration, timestamp, outputLimit: config.templateOutputLimit });
      // Values the function read from the vault are masked in the record as well.
      const recorded = { method: t.method, url: t.redactor.redact(b.recorded.url), headers: t.redactor.redactHeaders(b.recorded.headers), body: t.redactor.redact(b.recorded.body) };
      built = { ...b, method: t.method, recorded };
    } else {
      built = buildRequest({ ep, msg, ...epCtx, ...integration, timestamp, outputLimit: config.templateOutputLimit });
    }
  } catch (err) {
    const code = err instanceof HookwardenError ? err.code : "E_TEMPLATE_RENDER";
    const detail = err instanceof HookwardenError ? err.message : "The request could not be built";
    const errorCode = code === "E_TEMPLATE_OUTPUT_TOO_LARGE" || code === "E_MASTER_KEY" || code.startsWith("E_FUNCTION_") || (code === "E_SSRF_BLOCKED" && transform.kind !== "none") ? code : "E_TEMPLATE_RENDER";
    result = { ok: false, statusCode: 0, headers: {}, body: "", durationMs: 0, errorCode, errorDetail: detail };
  }
  if (built) {
    // W3C Trace Context: the destination (HTTP or broker headers) can join the attempt's trace.
    // Not signed (Standard Webhooks signs id, timestamp and body) and not in the recorded request.
    if (traceparent !== undefined) built.headers.traceparent = traceparent;
    if (!tlsVerify) logger.warn({ endpointId: ep.id, msgId: msg.id }, "delivering without TLS verification (endpoint opted out)");
    const timeoutMs = Math.min(ep.timeout_ms ?? config.requestTimeout, config.requestTimeout);
    if (broker) ({ result, masked } = await sendToDestination(destinations?.forUrl(ep.url), built, msg, epCtx.integration, epCtx.secrets, timeoutMs, signal));
    else result = await sender.send({ url: built.url, method: built.method, headers: built.headers, body: built.body, tlsVerify, timeoutMs, ...(signal ? { signal } : {}) });
  }
  const functionRedactor = transform.kind === "changed" || transform.kind === "error" ? transform.redactor : Redactor.NONE;
  const redactor = (built?.redactor ?? Redactor.NONE).and(Redactor.of(masked)).and(functionRedactor);
  const r = result!;
  const answered = r.statusCode !== 0;
  const received = r.ok || answered ? r.body : (r.errorDetail ?? "");
  const attempt: AttemptInsert = {
    id: newId("atmpt"),
    org_id: job.orgId,
    scope_id: job.appId,
    item_id: msg.id,
    destination_id: ep.id,
    kind: "outbound",
    url: built ? built.recorded.url : ep.url,
    status: r.ok ? ATTEMPT_SUCCESS : ATTEMPT_FAIL,
    response_status_code: r.statusCode,
    // Responses are kept as received unless the endpoint asks for masking (a platform that
    // echoes credentials); our own error texts are always masked.
    // Masked before the NUL replacement (a secret may hold what it replaces), and with the tail
    // of a cut answer checked for the start of a secret.
    response: storableText(answered && !epCtx.integration.redactResponses ? received : r.truncated ? redactor.redactCut(received) : redactor.redact(received)),
    duration_ms: r.durationMs,
    trigger_type: job.triggerType,
    error_code: r.errorCode,
    tls_verify: tlsVerify ? 1 : 0,
    created_at: clock.now(),
    request: built && isCustomised(epCtx.integration) ? JSON.stringify({ ...built.recorded, body: built.recorded.body.slice(0, config.responseBodyLimit) }) : null,
  };
  return { result: r, attempt, built };
}
