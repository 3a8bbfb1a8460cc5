import type { Keyring } from "../vault/envelope.js";
import type { BucketRow } from "./buckets.js";
import type { ReceivedRequest } from "./types.js";

/** What a non-ephemeral bucket keeps of a request, sealed as one value. */
export interface StoredRequest {
  method: string;
  suffix: string;
  query: string;
  headers: [string, string][];
  /** base64 of the exact bytes received. */
  body: string;
  /** The input it came in through (in memory only, never sealed): selects the input's transformation. */
  inputId?: string;
  /**
   * The ingress span's `traceparent` (tracing on), the parent of each forward's span. Kept in the
   * row's `trace_context` column, never in the sealed value (`toStored` does not copy it).
   */
  trace?: string | undefined;
}

export function requestAad(requestId: string): string {
  return `inbound-request:${requestId}`;
}

export function toStored(req: ReceivedRequest): StoredRequest {
  return { method: req.method, suffix: req.suffix, query: req.query, headers: req.rawHeaders, body: req.body.toString("base64") };
}

/**
 * Seals what is kept of a request. The bucket's own credential (the Authorization header, or the
 * `token` parameter of a token bucket) authenticated the caller to Hookwarden and is never
 * forwarded; kept, it would be shown by `GET .../request/{id}` although the API never shows a
 * bucket's password or token again.
 */
export function sealRequest(keyring: Keyring, requestId: string, req: ReceivedRequest, bucketAuth: BucketRow["auth_type"] = "none"): string {
  return sealStored(keyring, requestId, keptForm(req, bucketAuth));
}

/** What is kept (and forwarded) of a request: without the bucket's own credential. */
export function keptForm(req: ReceivedRequest, bucketAuth: BucketRow["auth_type"] = "none"): StoredRequest {
  const stored = toStored(req);
  if (bucketAuth !== "none") stored.headers = stored.headers.filter(([name]) => name.toLowerCase() !== "authorization");
  if (bucketAuth === "token") stored.query = stored.query.split("&").filter((pair) => !new URLSearchParams(pair).has("token")).join("&");
  return stored;
}

export function sealStored(keyring: Keyring, requestId: string, stored: StoredRequest): string {
  const { inputId: _inputId, trace: _trace, ...sealed } = stored;
  return keyring.seal(JSON.stringify(sealed), requestAad(requestId));
}

export function openRequest(keyring: Keyring, requestId: string, sealed: string): StoredRequest {
  return JSON.parse(keyring.openString(sealed, requestAad(requestId))) as StoredRequest;
}
