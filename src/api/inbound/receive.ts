import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { answerWithFunction } from "../../ingress/input-response.js";
import type { FunctionRunner } from "../../functions/runner.js";
import type { Context } from "../../context/index.js";
import type { HttpSender, SendResult } from "../../delivery/http-sender.js";
import { RateLimiter } from "../../util/rate-limiter.js";
import type { DeliveryWorker } from "../../engine/worker.js";
import { HookwardenError } from "../../errors/index.js";
import { classifyStorageError } from "../../store/errors.js";
import { isClientAbort } from "../connection-limits.js";
import { route, type RouteSpec } from "../contract/index.js";
import { clientIp, inRanges, parseCidrs } from "../../ingress/client-ip.js";
import { AcceptTimes } from "../../ingress/accept-times.js";
import type { HeldRequests } from "../../ingress/held-requests.js";
import { DEFAULT_RESPONSE, type ResponseConfig } from "../../ingress/inputs.js";
import type { Intake } from "../../ingress/intake.js";
import type { AgentRelay } from "../../ingress/agent-relay.js";
import type { InputCache, ResolvedInput } from "../../ingress/lookup.js";
import { outputTarget, type OutputCache } from "../../ingress/output-cache.js";
import type { RejectionLog } from "../../ingress/rejections.js";
import { toStored } from "../../ingress/stored-request.js";
import { forwardLoaded } from "../../ingress/forward-kind.js";
import type { ReceivedRequest } from "../../ingress/types.js";
import { firstHeader, SpanKind } from "../../tracing/index.js";
import { fallbackDeliveryId, verifySignature } from "../../ingress/verify/providers.js";

const TUNNEL_DROP = new Set(["connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te", "trailer", "proxy-connection"]);

export interface IngressDeps {
  /** The agents connected to this node (agents/ provides it). */
  agents?: AgentRelay;
  intake: Intake;
  inputs: InputCache;
  /** The node's cache of bucket outputs, invalidated by the admin API's changes. */
  outputs?: OutputCache;
  rejections: RejectionLog;
  worker: DeliveryWorker;
  /** Ephemeral buckets' requests, held in this process's memory for their jobs. */
  held: HeldRequests;
  sender: HttpSender;
  /** Sandboxed functions (input response mode `function`). */
  functions?: FunctionRunner;
  /** Incident pauses (src/incident): a paused bucket's requests are stored and wait in the queue. */
  paused?: { blocks(orgId: string, bucketId: string): boolean };
}

interface IngressState {
  resolved: ResolvedInput | undefined;
  ip: string;
  receivedAt: number;
  /** How long the input lookup took (a cached known id costs ~0, an unknown one a query). */
  lookupMs: number;
}

declare module "fastify" {
  interface FastifyRequest {
    ingress: IngressState | undefined;
  }
}

type Params = { inputId: string };

// Public answers stay generic: the sender's or agent's reason names the destination's host,
// address and port, or the SSRF policy (which tells a prober what the network holds). The
// reason is kept in the attempt record, which only the bucket's owner reads.
const DESTINATION_UNAVAILABLE = Object.freeze({ code: "E_DESTINATION_UNAVAILABLE", detail: "The destination could not be reached" });
const DESTINATION_TIMEOUT = Object.freeze({ code: "E_DESTINATION_TIMEOUT", detail: "The destination did not answer in time" });

function sendStatic(reply: FastifyReply, r: Extract<ResponseConfig, { mode: "static" }>): FastifyReply {
  reply.status(r.status);
  for (const [k, v] of Object.entries(r.headers)) reply.header(k, v);
  return r.body === "" ? reply.send() : reply.send(r.body);
}

function sameSecret(a: string, b: string): boolean {
  // Digests have equal length, so the comparison time says nothing about either value.
  return timingSafeEqual(createHash("sha256").update(a).digest(), createHash("sha256").update(b).digest());
}

/** Bucket auth: basic (username + sealed password) or a token in `Authorization: Bearer` or `?token=`. */
function authorised(resolved: ResolvedInput, req: FastifyRequest, query: string): boolean {
  const { bucket, authSecret } = resolved;
  if (bucket.auth_type === "none") return true;
  if (!authSecret) return false;
  const header = req.headers.authorization ?? "";
  if (bucket.auth_type === "basic") {
    const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (!m) return false;
    const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
    const at = decoded.indexOf(":");
    if (at < 0) return false;
    const userOk = sameSecret(decoded.slice(0, at), bucket.auth_username ?? "");
    const passOk = sameSecret(decoded.slice(at + 1), authSecret.reveal());
    return userOk && passOk;
  }
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
  const token = bearer ?? new URLSearchParams(query).get("token");
  return token !== null && token !== undefined && sameSecret(token, authSecret.reveal());
}

/**
 * `ANY /in/{input_id}[/any/sub/path]`: the public face of inbound webhooks. Checks run in a fixed
 * order, each with its status and code: IP allowlist (403), rate limit (429), size (413), bucket
 * auth (401), signature (401). An unknown input is answered exactly as a known one with the
 * default response, so ids cannot be discovered by probing. In static mode the caller learns
 * nothing of the destination.
 */
export async function ingressRoutes(app: FastifyInstance, ctx: Context, deps: IngressDeps): Promise<void> {
  const { config, clock, events, logger } = ctx;
  const trusted = parseCidrs(config.trustedProxies);
  const limiter = new RateLimiter();
  const unknownResponse: Extract<ResponseConfig, { mode: "static" }> =
    config.unknownInputStatus === 404 ? { mode: "static", status: 404, headers: {}, body: "" } : (DEFAULT_RESPONSE as Extract<ResponseConfig, { mode: "static" }>);

  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: config.maxPayloadSize }, (_req, body, done) => done(null, body));
  app.decorateRequest("ingress", undefined);

  const reject = (req: FastifyRequest, reply: FastifyReply, status: number, code: string, detail: string, reason = detail) => {
    const r = req.ingress?.resolved;
    deps.rejections.record({ orgId: r?.bucket.org_id ?? null, bucketId: r?.bucket.id ?? null, inputId: r?.input.id ?? "", status, code, reason, method: req.method });
    return reply.status(status).send({ code, detail });
  };

  app.addHook("onRequest", async (req: FastifyRequest<{ Params: Params }>, reply) => {
    const receivedAt = clock.now();
    const forwarded = req.headers["x-forwarded-for"];
    const ip = clientIp(req.socket.remoteAddress ?? "", Array.isArray(forwarded) ? forwarded.join(",") : forwarded, trusted);
    const lookupStarted = performance.now();
    const resolved = await deps.inputs.get(req.params.inputId);
    req.ingress = { resolved, ip, receivedAt, lookupMs: performance.now() - lookupStarted };
    if (!resolved) return;
    if (resolved.allowlist && !inRanges(ip, resolved.allowlist)) {
      return reject(req, reply, 403, "E_IP_DENIED", "This address may not post to this input", `client ${ip} not in the allowlist`);
    }
    const perMinute = resolved.bucket.rate_limit;
    if (perMinute !== null) {
      const wait = limiter.take(resolved.input.id, perMinute / 60, receivedAt, perMinute);
      if (wait > 0) {
        reply.header("retry-after", String(Math.ceil(wait / 1000)));
        return reject(req, reply, 429, "E_RATE_LIMITED", `More than ${perMinute} requests per minute`);
      }
    }
  });

  app.setErrorHandler((err: { statusCode?: number; code?: string }, req, reply) => {
    if (err.statusCode === 413 || err.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      if (req.ingress?.resolved) return reject(req, reply, 413, "E_PAYLOAD_TOO_LARGE", `Bodies are limited to ${config.maxPayloadSize} bytes`);
      return reply.status(413).send({ code: "E_PAYLOAD_TOO_LARGE", detail: `Bodies are limited to ${config.maxPayloadSize} bytes` });
    }
    // Load shedding (intake queue or ephemeral memory full) is a 503 the provider retries, not a 500.
    // Storage down (503) or full (507): the provider retries after `Retry-After`; nothing was stored.
    const fault = err instanceof HookwardenError ? err : classifyStorageError(err);
    if (fault && (fault.status === 503 || fault.status === 507)) {
      return reply.status(fault.status).header("retry-after", String(fault.retryAfter ?? 1)).send({ code: fault.code, detail: fault.message });
    }
    // A client that went away or was cut off is counted by the connection guard, not logged here.
    if (isClientAbort(err, req)) return reply.status(400).send({ code: "E_ABORTED", detail: "The request did not arrive whole" });
    logger.error({ err }, "inbound request failed");
    return reply.status(500).send({ code: "E_INTERNAL", detail: "Internal server error" });
  });

  // Timing: an unknown input's answer is held as long as an accept takes (see AcceptTimes). Not
  // with --unknown-input-status 404, whose answer tells unknown ids apart anyway.
  const acceptTimes = new AcceptTimes();
  // A timer fires late by the event loop's lag (1 ms or more), which the accepts it imitates have
  // already paid: the lateness measured on past holds is taken off the next.
  let lateness = 0;
  const likeAnAccept = async (started: number) => {
    const target = acceptTimes.draw();
    await deps.intake.barrier();
    const left = target - (performance.now() - started) - lateness;
    if (left <= 0) return;
    const due = performance.now() + left;
    await new Promise((resolve) => setTimeout(resolve, left));
    lateness = 0.9 * lateness + 0.1 * (performance.now() - due);
  };

  const handler = async (req: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
    const state = req.ingress!;
    // Server time spent on this request, leaving out the body's transfer, which the caller paces.
    const started = performance.now() - state.lookupMs;
    const resolved = state.resolved;
    if (!resolved) {
      if (config.unknownInputStatus === 200) await likeAnAccept(started);
      return sendStatic(reply, unknownResponse);
    }
    const { bucket, input, verification, response } = resolved;
    const rawUrl = req.url;
    const q = rawUrl.indexOf("?");
    const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
    const query = q === -1 ? "" : rawUrl.slice(q + 1);
    const prefix = `/in/${input.id}`;
    const proto = (inRanges(req.socket.remoteAddress ?? "", trusted) && String(req.headers["x-forwarded-proto"] ?? "").split(",")[0]?.trim()) || ((req.socket as { encrypted?: boolean }).encrypted ? "https" : "http");
    const base = config.publicUrl?.replace(/\/+$/, "") ?? `${proto}://${req.headers.host ?? "localhost"}`;
    const rawHeaders: [string, string][] = [];
    for (let i = 0; i + 1 < req.raw.rawHeaders.length; i += 2) rawHeaders.push([req.raw.rawHeaders[i]!, req.raw.rawHeaders[i + 1]!]);
    // Looked up by name (verification headers): `constructor` must not be found on a prototype.
    const headers: Record<string, string | undefined> = Object.create(null) as Record<string, string | undefined>;
    for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(", ") : v;
    const received: ReceivedRequest = {
      method: req.method,
      publicUrl: base + rawUrl,
      suffix: path.startsWith(prefix) ? path.slice(prefix.length) : "",
      query,
      headers,
      rawHeaders,
      body: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
      clientIp: state.ip,
      receivedAt: state.receivedAt,
    };

    if (!authorised(resolved, req, query)) {
      if (bucket.auth_type === "basic") reply.header("www-authenticate", 'Basic realm="hookwarden"');
      return reject(req, reply, 401, "E_UNAUTHORIZED", "Missing or wrong credentials");
    }
    const verified = verifySignature(verification, resolved.verificationSecret, received);
    if (!verified.ok) return reject(req, reply, 401, "E_SIGNATURE_INVALID", `Signature verification failed: ${verified.reason}`, verified.reason);

    // Issue 14: a function answers the caller, and may drop the request (nothing stored or forwarded).
    const answer = response.mode === "function" ? await answerWithFunction(ctx, deps.functions, bucket, input.id, response.function, received) : undefined;
    if (answer?.drop) return sendStatic(reply, answer.response);
    const staticResponse = response.mode === "static" ? response : answer?.response;

    const ephemeral = bucket.ephemeral === 1;
    const wait = response.mode === "wait";
    const deliveryId = input.dedupe === 1 ? (verified.deliveryId ?? fallbackDeliveryId(received)) : undefined;
    // Ephemeral requests wait for their outputs in memory only: past the forwarder's bound, shed load.
    if (ephemeral && !deps.held.hasRoom(1)) throw new HookwardenError("E_UNAVAILABLE", 503, "Too many ephemeral requests waiting to be forwarded; retry shortly");
    // Tracing (issue 12): a provider's `traceparent` is the parent; the span's own is stored with
    // the request (forwards join it) and the span ends with the answer the caller got.
    let ingressId: string | undefined;
    if (ctx.tracing) {
      const span = ctx.tracing.start("hookwarden.ingress", SpanKind.SERVER, firstHeader(req.headers.traceparent), {
        "http.request.method": received.method,
        "http.route": "/in/{input_id}",
        "hookwarden.org.id": bucket.org_id,
        "hookwarden.bucket.id": bucket.id,
        "hookwarden.input.id": input.id,
      });
      received.traceContext = span.traceparent;
      reply.raw.once("close", () => {
        const status = reply.raw.statusCode;
        span.end({ "http.response.status_code": status, ...(ingressId !== undefined ? { "hookwarden.request.id": ingressId } : {}) }, status >= 500 ? "E_HTTP_STATUS" : null);
      });
    }
    // Paused (incident response): stored and queued as usual, answered at once, forwarded after
    // resume. An ephemeral bucket keeps nothing to queue, so the provider is asked to retry later.
    const held = deps.paused?.blocks(bucket.org_id, bucket.id) === true;
    if (held && ephemeral) throw new HookwardenError("E_UNAVAILABLE", 503, "Deliveries of this bucket are paused; retry later", { retryAfter: 60 });
    const result = await deps.intake.accept({
      resolved,
      req: received,
      deliveryId,
      statusCode: staticResponse?.status ?? 0,
      leaseFirstTo: wait && !held ? deps.worker.id : undefined,
    });
    ingressId = result.requestId;
    if (result.duplicate) {
      const answer = staticResponse ?? (DEFAULT_RESPONSE as Extract<ResponseConfig, { mode: "static" }>);
      events.emit("ingress:duplicate", { orgId: bucket.org_id, bucketId: bucket.id, inputId: input.id, status: answer.status });
      acceptTimes.record(performance.now() - started);
      return sendStatic(reply, answer);
    }
    events.emit("ingress:accepted", { orgId: bucket.org_id, bucketId: bucket.id, inputId: input.id, size: received.body.length, durationMs: clock.now() - state.receivedAt, status: staticResponse?.status ?? (response.mode === "wait" ? null : (DEFAULT_RESPONSE as Extract<ResponseConfig, { mode: "static" }>).status) });
    if (staticResponse || response.mode !== "wait" || held) {
      // Only a static answer's time is what an unknown input's answer imitates.
      if (response.mode === "static") acceptTimes.record(performance.now() - started);
      return sendStatic(reply, staticResponse ?? (DEFAULT_RESPONSE as Extract<ResponseConfig, { mode: "static" }>));
    }

    // Wait mode: answer with the first destination's status and body. A forward-mode agent
    // returns nothing to the caller, so that input answers as if static. With no agent connected
    // the tokens say which mode it is: a 502 told the caller the webhook failed although it is
    // stored and waits for an agent (and the provider sent it again).
    const first = result.outputs[0];
    const agentMode = first?.type === "agent" ? await deps.agents?.servingOf(bucket.org_id, bucket.id) : undefined;
    if (agentMode === "forward") {
      if (result.leasedJob) deps.worker.releaseLeased(result.leasedJob);
      return sendStatic(reply, DEFAULT_RESPONSE as Extract<ResponseConfig, { mode: "static" }>);
    }
    let send: Promise<SendResult> | undefined;
    if (first) {
      send = result.leasedJob
        ? deps.worker.deliverLeased(result.leasedJob, forwardLoaded(outputTarget(ctx, bucket, first), { ...toStored(received), inputId: input.id, trace: received.traceContext })).then((r) => r.result)
        : undefined;
    }
    let answered: number;
    if (!send) {
      answered = 502;
      reply.status(502).send({ code: "E_NO_DESTINATION", detail: "This input waits for a destination, but its bucket has no URL output" });
    } else {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<"late">((resolve) => {
        timer = setTimeout(() => resolve("late"), response.timeoutMs);
      });
      const outcome = await Promise.race([send, late]);
      clearTimeout(timer);
      if (outcome === "late") {
        answered = 504;
        reply.status(504).send(DESTINATION_TIMEOUT);
      } else if (outcome.statusCode === 0) {
        answered = 502;
        reply.status(502).send(DESTINATION_UNAVAILABLE);
      } else {
        answered = outcome.statusCode;
        if (first?.type === "agent") {
          // Tunnel: the internal service's headers travel back too (minus connection-level ones).
          for (const [k, v] of Object.entries(outcome.headers)) if (!TUNNEL_DROP.has(k.toLowerCase())) reply.header(k, v);
          // As bytes: Fastify appends `; charset=utf-8` to a JSON content-type sent with a string
          // body, and the caller got a header the internal service never sent.
          reply.status(outcome.statusCode).send(outcome.raw ?? Buffer.from(outcome.body, "utf8"));
        } else {
          const type = outcome.headers["content-type"];
          if (type) reply.header("content-type", type);
          reply.status(outcome.statusCode).send(outcome.raw ?? outcome.body);
        }
      }
    }
    void ctx.store.db
      .updateTable("inbound_requests")
      .set({ status_code: answered })
      .where("id", "=", result.requestId)
      .execute()
      .catch((err: unknown) => logger.warn({ err, requestId: result.requestId }, "could not record the answered status"));
    return reply;
  };

  // Any method: providers choose theirs (some verify a URL with GET or HEAD before sending).
  const spec: Omit<RouteSpec<undefined, undefined>, "url"> = {
    method: "ANY",
    operationId: "hookwarden.ingress.receive",
    summary: "Receive a webhook on an input (public: bucket auth, IP allowlist, provider signature)",
    description: "Any method and any body. The answer is the input's configured one (static, the first output's in wait mode, or a function's); the 2xx is sent once the request is on disk.",
    tag: "Ingress",
    auth: "bucket",
    responses: {
      200: { description: "The input's configured answer (status, headers and body are the input's)" },
      401: { description: "Bucket authentication failed" },
      403: { description: "Signature check failed or address not allowed" },
      429: { description: "The bucket's rate limit" },
      502: { description: "Wait mode: the output could not be reached" },
      504: { description: "Wait mode: the output did not answer in time" },
    },
  };
  route(app, { ...spec, url: "/in/:inputId" }, (req, reply) => handler(req as FastifyRequest<{ Params: Params }>, reply));
  route(app, { ...spec, url: "/in/:inputId/*", operationId: "hookwarden.ingress.receive-path" }, (req, reply) => handler(req as FastifyRequest<{ Params: Params }>, reply));
}
