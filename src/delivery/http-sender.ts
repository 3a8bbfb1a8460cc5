import { isIP } from "node:net";
import { Agent, buildConnector, type Dispatcher } from "undici";
import { HookwardenError, type ErrorCode } from "../errors/index.js";
import { onAbort } from "../util/on-abort.js";
import type { AddressPolicy } from "../net/ssrf.js";
import { honoursRetryAfter, parseRetryAfter } from "../engine/retry-schedule.js";

/** A 429/503 whose `Retry-After` is one of RFC 9110's two forms (the retry then honours it). */
function retryAfterAnswer(statusCode: number, headers: Record<string, string>): boolean {
  return honoursRetryAfter(statusCode) && parseRetryAfter(headers["retry-after"], Date.now()) !== undefined;
}

export interface SendRequest {
  url: string;
  method?: string;
  headers: Record<string, string>;
  body: string | Buffer;
  tlsVerify: boolean;
  timeoutMs: number;
  signal?: AbortSignal;
  /**
   * Bytes of the answer to keep as `raw` (an input in `wait` mode hands them to its caller);
   * without it only the first `responseBodyLimit` bytes are read, as text for the attempt record.
   */
  answerLimit?: number;
}

/** What one attempt came to (the engine's result type, whatever the kind). */
export type { SendResult } from "../engine/kind.js";
import type { SendResult } from "../engine/kind.js";

const TLS_CODES = new Set([
  "CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID", "DEPTH_ZERO_SELF_SIGNED_CERT", "SELF_SIGNED_CERT_IN_CHAIN", "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "ERR_TLS_CERT_ALTNAME_INVALID", "CERT_REVOKED", "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE", "EPROTO",
]);

function classify(err: unknown): { code: ErrorCode; detail: string } {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof HookwardenError) return { code: e.code, detail: e.message };
    const code = (e as { code?: string }).code ?? "";
    const name = (e as { name?: string }).name ?? "";
    if (name === "AbortError" || name === "TimeoutError" || code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT" || code === "UND_ERR_CONNECT_TIMEOUT" || code === "ETIMEDOUT") {
      return { code: "E_TIMEOUT", detail: "No complete response within the attempt timeout" };
    }
    if (TLS_CODES.has(code) || code.startsWith("ERR_TLS") || code.startsWith("ERR_SSL")) {
      return { code: "E_TLS", detail: `TLS handshake failed (${code})` };
    }
    if (code === "ENOTFOUND" || code === "EAI_AGAIN") return { code: "E_DNS", detail: `Could not resolve the endpoint's host (${code})` };
    if (code.startsWith("E") && /^E[A-Z]+$/.test(code)) return { code: "E_CONNECT", detail: `Connection failed (${code})` };
  }
  return { code: "E_CONNECT", detail: "Connection failed" };
}

/**
 * The first `limit` bytes as text, and whether that is all of it. A cut inside a UTF-8 sequence
 * drops the partial character instead of turning it into U+FFFD: redaction has to see the last
 * whole characters to mask the start of a secret the cut went through.
 */
export function responseText(bytes: Buffer, limit: number): { body: string; truncated?: true } {
  if (bytes.length <= limit) return { body: bytes.toString("utf8") };
  return { body: new TextDecoder("utf-8").decode(bytes.subarray(0, limit), { stream: true }), truncated: true };
}

/**
 * Sends one webhook with undici. Every new connection goes through the SSRF policy with the
 * address it will really use (so DNS rebinding and IP literals cannot slip past), redirects are
 * never followed (a 3xx is a failed attempt), the whole attempt is cancelled at `timeoutMs`, and
 * at most `responseBodyLimit` bytes of the answer are read.
 */
export class HttpSender {
  readonly #verified: Agent;
  readonly #unverified: Agent;
  readonly #responseBodyLimit: number;

  constructor(opts: { policy: AddressPolicy; responseBodyLimit: number; connectTimeoutMs: number }) {
    this.#responseBodyLimit = opts.responseBodyLimit;
    const guarded = (rejectUnauthorized: boolean): buildConnector.connector => {
      const base = buildConnector({ rejectUnauthorized, timeout: opts.connectTimeoutMs });
      return (options, callback) => {
        opts.policy.resolve(options.hostname).then(
          ({ address }) => {
            const bare = options.hostname.replace(/^\[|\]$/g, "");
            const servername = options.servername ?? (isIP(bare) ? undefined : bare);
            base({ ...options, hostname: address, ...(servername ? { servername } : {}) }, callback);
          },
          (err: Error) => callback(err, null),
        );
      };
    };
    const agentOptions = { keepAliveTimeout: 4_000, connections: 256 };
    this.#verified = new Agent({ ...agentOptions, connect: guarded(true) });
    this.#unverified = new Agent({ ...agentOptions, connect: guarded(false) });
  }

  /**
   * One attempt through undici's dispatcher handler API rather than `request()`: the answer is
   * collected from `onResponseData` chunks, with no Readable stream, async iterator or
   * `AbortSignal.any` per attempt (those were 8% of the gateway's CPU in the end-to-end bench,
   * from `node --cpu-prof`). One timer bounds the whole attempt.
   */
  send(req: SendRequest): Promise<SendResult> {
    const started = performance.now();
    const dispatcher: Dispatcher = req.tlsVerify ? this.#verified : this.#unverified;
    // One byte past the limits tells a cut answer from one that fits exactly.
    const keep = Math.max(req.answerLimit ?? this.#responseBodyLimit, this.#responseBodyLimit) + 1;
    const responseBodyLimit = this.#responseBodyLimit;
    return new Promise<SendResult>((resolve) => {
      let controller: Dispatcher.DispatchController | undefined;
      let abortWith: Error | undefined;
      let settled = false;
      let statusCode = 0;
      let headers: Record<string, string> = {};
      const chunks: Buffer[] = [];
      let size = 0;
      let capped = false;
      const abort = (reason: Error) => {
        abortWith ??= reason;
        controller?.abort(reason);
      };
      const onShutdown = () => abort(req.signal!.reason instanceof Error ? req.signal!.reason : new DOMException("The attempt was aborted", "AbortError"));
      const timer = setTimeout(() => {
        abort(new DOMException("The attempt timed out", "TimeoutError"));
        // Still waiting for a connection: undici would only notice the abort once connected.
        if (!controller) fail(abortWith);
      }, req.timeoutMs);
      const offShutdown = req.signal ? onAbort(req.signal, onShutdown) : undefined;
      const done = () => {
        settled = true;
        clearTimeout(timer);
        offShutdown?.();
      };
      const fail = (err: unknown) => {
        if (settled) return;
        done();
        const { code, detail } = classify(abortWith ?? err);
        resolve({ ok: false, statusCode: 0, headers: {}, body: "", durationMs: Math.round(performance.now() - started), errorCode: code, errorDetail: detail });
      };
      const finish = () => {
        if (settled) return;
        done();
        const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
        const ok = statusCode >= 200 && statusCode < 300;
        let errorCode: ErrorCode | null = null;
        let errorDetail: string | null = null;
        if (!ok) {
          errorCode = statusCode === 401 || statusCode === 403 ? "E_ENDPOINT_AUTH" : statusCode === 410 ? "E_ENDPOINT_GONE" : retryAfterAnswer(statusCode, headers) ? "E_RETRY_AFTER" : "E_HTTP_STATUS";
          errorDetail =
            statusCode >= 300 && statusCode < 400
              ? `Endpoint answered ${statusCode}; redirects are not followed`
              : errorCode === "E_ENDPOINT_GONE"
                ? "Endpoint answered 410 Gone: it asked never to be called again"
                : errorCode === "E_RETRY_AFTER"
                  ? `Endpoint answered ${statusCode} with Retry-After; the next attempt waits at least that long`
                  : `Endpoint answered ${statusCode}`;
        }
        resolve({
          ok,
          statusCode,
          headers,
          ...responseText(bytes, responseBodyLimit),
          ...(req.answerLimit !== undefined ? { raw: bytes.subarray(0, req.answerLimit) } : {}),
          durationMs: Math.round(performance.now() - started),
          errorCode,
          errorDetail,
        });
      };
      if (req.signal?.aborted) {
        abortWith = new DOMException("The attempt was aborted", "AbortError");
        fail(abortWith);
        return;
      }
      try {
        const url = new URL(req.url);
        dispatcher.dispatch(
          {
            origin: url.origin,
            path: url.pathname + url.search,
            method: (req.method ?? "POST") as Dispatcher.HttpMethod,
            headers: req.headers,
            body: req.method === "GET" || req.method === "HEAD" ? null : req.body,
            headersTimeout: req.timeoutMs,
            bodyTimeout: req.timeoutMs,
          },
          {
            onRequestStart(ctl) {
              controller = ctl;
              if (abortWith) ctl.abort(abortWith);
            },
            onResponseStart(_ctl, code, h) {
              statusCode = code;
              // The destination names these: a plain object would drop `__proto__`.
              const flat: Record<string, string> = Object.create(null) as Record<string, string>;
              for (const k in h) {
                const v = h[k];
                if (v !== undefined) flat[k] = Array.isArray(v) ? v.join(", ") : v;
              }
              headers = flat;
            },
            onResponseData(ctl, chunk) {
              if (capped) return;
              if (size + chunk.length >= keep) {
                chunks.push(chunk.subarray(0, keep - size));
                size = keep;
                // Enough read: the rest is discarded with the connection.
                capped = true;
                finish();
                ctl.abort(new Error("response body limit reached"));
                return;
              }
              chunks.push(chunk);
              size += chunk.length;
            },
            onResponseEnd() {
              finish();
            },
            onResponseError(_ctl, err) {
              if (capped) return;
              fail(err);
            },
          },
        );
      } catch (err) {
        fail(err);
      }
    });
  }

  async close(): Promise<void> {
    await Promise.all([this.#verified.close(), this.#unverified.close()]);
  }
}
