import type { Selectable } from "kysely";
import type { JobsTable } from "../store/schema.js";

/**
 * One pending try of one item to one destination. By `kind`:
 * - `outbound`: `scope_id` the application, `item_id` the message, `destination_id` the endpoint;
 * - `forward`: `scope_id` the bucket, `item_id` the inbound request, `destination_id` the output.
 * `held_by` is read only by the claim, and set on insert.
 */
export type JobRow = Omit<Selectable<JobsTable>, "held_by"> & { held_by?: string | null };

export const TRIGGER_SCHEDULED = 0;
export const TRIGGER_MANUAL = 1;
/** Hookwarden's own: a synchronous call (`POST .../call`) or test event, never retried. */
export const TRIGGER_SYNC = 2;
