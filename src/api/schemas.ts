import { z } from "zod";

/** Svix's id grammar for uids, event type names and channels. */
export const NAME_RE = /^[a-zA-Z0-9\-_.]+$/;

export const uid = z.string().min(1).max(256).regex(NAME_RE, "may contain only letters, digits, '-', '_' and '.'");
export const eventTypeName = z.string().min(1).max(256).regex(NAME_RE, "may contain only letters, digits, '-', '_' and '.'");
export const channel = z.string().min(1).max(128).regex(NAME_RE, "may contain only letters, digits, '-', '_' and '.'");
export const metadata = z.record(z.string(), z.string());
export const rateLimit = z.number().int().min(1).max(65535);

let lastMs = Number.NaN;
let lastIso = "";

/**
 * Epoch milliseconds as the ISO-8601 strings Svix returns. The last one is remembered: under load
 * many answers in a row carry the same millisecond (a publish's timestamp), and `toISOString` was
 * 0.6% of the e2e bench's main thread.
 */
export function iso(ms: number): string {
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString();
    lastMs = ms;
  }
  return lastIso;
}

export function jsonOrNull<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}
