import { z } from "zod";

/** Svix's id grammar for uids, event type names and channels. */
export const NAME_RE = /^[a-zA-Z0-9\-_.]+$/;

export const uid = z.string().min(1).max(256).regex(NAME_RE, "may contain only letters, digits, '-', '_' and '.'");
export const eventTypeName = z.string().min(1).max(256).regex(NAME_RE, "may contain only letters, digits, '-', '_' and '.'");
export const channel = z.string().min(1).max(128).regex(NAME_RE, "may contain only letters, digits, '-', '_' and '.'");
export const metadata = z.record(z.string(), z.string());
export const rateLimit = z.number().int().min(1).max(65535);

/** Epoch milliseconds as the ISO-8601 strings Svix returns. */
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function jsonOrNull<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}
