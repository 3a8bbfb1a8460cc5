import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Compares a received digest with the expected one in constant time. Lengths are compared
 * first (they are public: every digest of an algorithm has the same length).
 */
export function digestEquals(expected: Buffer, received: Buffer): boolean {
  return expected.length === received.length && timingSafeEqual(expected, received);
}

export function hmac(algorithm: "sha256" | "sha1", key: string | Buffer, ...parts: (string | Buffer)[]): Buffer {
  const h = createHmac(algorithm, key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Decodes hex strictly (odd length or non-hex characters give an empty buffer, which never matches). */
export function fromHex(text: string): Buffer {
  return /^(?:[0-9a-fA-F]{2})+$/.test(text) ? Buffer.from(text, "hex") : Buffer.alloc(0);
}

export function fromBase64(text: string): Buffer {
  return /^[A-Za-z0-9+/_-]+={0,2}$/.test(text) ? Buffer.from(text, "base64") : Buffer.alloc(0);
}

/** True when a signed timestamp (seconds) is within `toleranceSec` of now, in either direction. */
export function withinWindow(timestampSec: number, nowMs: number, toleranceSec: number): boolean {
  return Number.isSafeInteger(timestampSec) && Math.abs(nowMs / 1000 - timestampSec) <= toleranceSec;
}
