/** An inbound request exactly as received: the body is kept byte for byte. */
export interface ReceivedRequest {
  method: string;
  /** The URL the provider called, as Hookwarden can best reconstruct it (Twilio signs it). */
  publicUrl: string;
  /** Path after `/in/{input_id}`, e.g. "" or "/any/sub/path". */
  suffix: string;
  /** Raw query string without `?`, "" when none. */
  query: string;
  /** Lower-cased names; repeated headers joined with ", " as Node does. */
  headers: Record<string, string | undefined>;
  /** Name/value pairs in arrival order, for forwarding without losing repeats. */
  rawHeaders: [string, string][];
  body: Buffer;
  clientIp: string;
  receivedAt: number;
  /** W3C `traceparent` of the ingress span (tracing on): stored in `trace_context`, never sealed. */
  traceContext?: string | undefined;
}

export type VerificationType = "none" | "hmac-sha256" | "stripe" | "github" | "shopify" | "slack" | "twilio" | "standard-webhooks";

export interface VerificationConfig {
  type: VerificationType;
  /** hmac-sha256: the header holding the signature. */
  header?: string | undefined;
  /** hmac-sha256: how the digest is written. */
  encoding?: "hex" | "base64" | undefined;
  /** hmac-sha256: text before the digest, e.g. "sha256=". */
  prefix?: string | undefined;
}

export type VerifyResult = { ok: true; deliveryId: string | undefined } | { ok: false; reason: string };
