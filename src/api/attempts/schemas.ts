import { z } from "zod";
import { dateTime, named } from "../contract/index.js";

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
