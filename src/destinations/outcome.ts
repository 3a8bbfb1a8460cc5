import { HookwardenError, type ErrorCode } from "../errors/index.js";
import type { DestinationOutcome, DestinationRequest } from "./kind.js";

/** A failure a kind recognised, with its stable code. */
export class BrokerFailure extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, detail: string) {
    super(detail);
    this.code = code;
  }
}

/** Errors every kind maps the same way: the SSRF policy, DNS, sockets. */
function common(err: unknown): { code: ErrorCode; detail: string } | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof HookwardenError || e instanceof BrokerFailure) return { code: e.code, detail: e.message };
    const code = (e as { code?: unknown }).code;
    if (code === "ENOTFOUND" || code === "EAI_AGAIN") return { code: "E_DNS", detail: `Could not resolve the broker's host (${code})` };
    if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return { code: "E_CONNECT", detail: `Connection to the broker failed (${code})` };
  }
  return undefined;
}

/**
 * Runs one publish under the attempt's timeout and the shutdown signal, and turns whatever
 * happened into an outcome. `classify` maps the kind's own errors; anything unrecognised is an
 * `E_CONNECT` with the library's message (which never holds credentials: they are not in URLs).
 */
export async function settle(
  req: DestinationRequest,
  publish: () => Promise<string>,
  classify: (err: unknown) => { code: ErrorCode; detail: string } | undefined,
): Promise<DestinationOutcome> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const bounded = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BrokerFailure("E_TIMEOUT", "The broker did not confirm the message within the attempt timeout")), req.timeoutMs);
    if (req.signal) {
      onAbort = () => reject(new BrokerFailure("E_TIMEOUT", "The attempt was aborted (shutting down)"));
      if (req.signal.aborted) onAbort();
      else req.signal.addEventListener("abort", onAbort, { once: true });
    }
  });
  try {
    const response = await Promise.race([publish(), bounded]);
    return { ok: true, errorCode: null, errorDetail: null, response, durationMs: Math.round(performance.now() - started) };
  } catch (err) {
    const c = common(err) ?? classify(err) ?? { code: "E_CONNECT" as const, detail: `Broker error: ${String((err as Error)?.message ?? err).slice(0, 300)}` };
    return { ok: false, errorCode: c.code, errorDetail: c.detail, response: "", durationMs: Math.round(performance.now() - started) };
  } finally {
    clearTimeout(timer);
    if (onAbort) req.signal?.removeEventListener("abort", onAbort);
  }
}
