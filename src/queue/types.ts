import type { Selectable } from "kysely";
import type { JobsTable } from "../store/schema.js";

/**
 * One pending delivery: a message to an endpoint (`kind` outbound) or an inbound request to a
 * bucket output (`forward`). `held_by` is read only by the claim, and set on insert.
 */
export type JobRow = Omit<Selectable<JobsTable>, "held_by"> & { held_by?: string | null };

export const TRIGGER_SCHEDULED = 0;
export const TRIGGER_MANUAL = 1;
/** Hookwarden's own: a synchronous call (`POST .../call`) or test event, never retried. */
export const TRIGGER_SYNC = 2;
