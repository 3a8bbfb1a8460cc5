import type { ApplicationRow } from "../applications/index.js";
import type { Config } from "../config/index.js";

export const DAY_MS = 86_400_000;

/**
 * How long a message of `app` keeps its payload: the application's `payloadRetentionPeriod`
 * (days) when set, else `--retention`. A message's own `payloadRetentionPeriod` /
 * `payloadRetentionHours` (Svix's fields) win over both.
 *
 * @example messageRetention(config, app) === 90 * DAY_MS // no override, default --retention
 */
export function messageRetention(config: Pick<Config, "retention">, app: Pick<ApplicationRow, "payload_retention_days">, ownMs?: number): number {
  if (ownMs !== undefined) return ownMs;
  return app.payload_retention_days !== null ? app.payload_retention_days * DAY_MS : config.retention;
}
