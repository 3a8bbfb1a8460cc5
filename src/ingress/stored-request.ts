import type { Keyring } from "../vault/envelope.js";
import type { BucketRow } from "./buckets.js";
import type { ReceivedRequest } from "./types.js";

/** What a non-ephemeral bucket keeps of a request, sealed as one value. */
export interface StoredRequest {
  method: string;
  suffix: string;
  query: string;
  headers: [string, string][];
  /** The exact bytes received. */
  body: Buffer;
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
  return { method: req.method, suffix: req.suffix, query: req.query, headers: req.rawHeaders, body: req.body };
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

/**
 * The sealed value of a request: its JSON fields (`v: 2`), a newline, then the body's bytes as
 * received. The first format (`openRequest` still reads it) was JSON alone with the body in
 * base64, sealed and written in base64 again: a 1 KiB body took ~1.8 KiB before sealing instead
 * of ~1 KiB, and the encoding, JSON and larger row cost CPU on every request (BENCHMARKS.md,
 * stop 28). JSON.stringify never writes a raw newline (it escapes one inside a string), so the
 * first newline ends the fields, and a value of the first format holds none.
 */
export function sealStored(keyring: Keyring, requestId: string, stored: StoredRequest): string {
  const fields = JSON.stringify({ v: 2, method: stored.method, suffix: stored.suffix, query: stored.query, headers: stored.headers });
  return keyring.seal([Buffer.from(`${fields}\n`, "utf8"), stored.body], requestAad(requestId));
}

const NEWLINE = 0x0a;

export function openRequest(keyring: Keyring, requestId: string, sealed: string): StoredRequest {
  const plain = keyring.open(sealed, requestAad(requestId));
  const end = plain.indexOf(NEWLINE);
  if (end === -1) {
    // The first format: JSON, the body in base64.
    const first = JSON.parse(plain.toString("utf8")) as Omit<StoredRequest, "body"> & { body: string };
    return { method: first.method, suffix: first.suffix, query: first.query, headers: first.headers, body: Buffer.from(first.body, "base64") };
  }
  const f = JSON.parse(plain.subarray(0, end).toString("utf8")) as Omit<StoredRequest, "body">;
  return { method: f.method, suffix: f.suffix, query: f.query, headers: f.headers, body: plain.subarray(end + 1) };
}
