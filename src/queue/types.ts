import type { Selectable } from "kysely";
import type { JobsTable } from "../store/schema.js";

/** One pending delivery of one message to one endpoint. */
export type JobRow = Selectable<JobsTable>;

export const TRIGGER_SCHEDULED = 0;
export const TRIGGER_MANUAL = 1;
/** Hookwarden's own: a synchronous call (`POST .../call`) or test event, never retried. */
export const TRIGGER_SYNC = 2;
