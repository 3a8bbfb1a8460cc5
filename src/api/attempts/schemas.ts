import { z } from "zod";
import type { AttemptRow } from "../../attempts/index.js";
import { dateTime, named } from "../contract/index.js";
import { iso } from "../schemas.js";

/** A delivery attempt as the API answers it (Svix's MessageAttemptOut, plus what Hookwarden adds). */
export const Attempt = named(
  "MessageAttempt",
  z.object({
    id: z.string(),
    msgId: z.string(),
    endpointId: z.string(),
    url: z.string(),
    response: z.string(),
    responseStatusCode: z.number().int(),
    responseDurationMs: z.number().int(),
    /** 0 success, 1 pending, 2 fail, 3 sending (Svix's codes). */
    status: z.number().int().min(0).max(3),
    statusText: z.enum(["success", "pending", "fail", "sending"]),
    triggerType: z.number().int(),
    timestamp: dateTime,
    errorCode: z.string().nullable(),
    tlsVerify: z.boolean(),
    /** The request as sent (templated endpoints), every secret masked. */
    request: z.unknown().nullable(),
  }),
);

export const STATUS_TEXT = ["success", "pending", "fail", "sending"] as const;

export function attemptOut(row: AttemptRow): z.output<typeof Attempt> {
  return {
    id: row.id,
    msgId: row.item_id,
    endpointId: row.destination_id,
    url: row.url,
    response: row.response,
    responseStatusCode: row.response_status_code,
    responseDurationMs: row.duration_ms,
    status: row.status,
    statusText: STATUS_TEXT[row.status] ?? ("fail" as const),
    triggerType: row.trigger_type,
    timestamp: iso(row.created_at),
    errorCode: row.error_code,
    tlsVerify: row.tls_verify === 1,
    /** The request as sent (templated endpoints), every secret masked. */
    request: row.request === null ? null : (JSON.parse(row.request) as unknown),
  };
}
