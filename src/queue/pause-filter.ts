import { sql, type RawBuilder } from "kysely";

/**
 * The claim's whole share of incident pauses, kept to one fragment so the claim query can change
 * around it: inside `select … from jobs where …`, leaves out every job whose scope (application,
 * or a forward's bucket) or organisation is paused. Paused jobs stay due in the
 * queue, untouched, and are claimed on the first round after `resume`. `not in` over the (small,
 * usually empty) pauses table is read once per statement; a correlated `not exists` probed it
 * twice per candidate row (390 candidates: 0.5 of a claim's 1.1 ms on PostgreSQL). Neither column
 * holds NULL.
 */
export const notPausedJob: RawBuilder<unknown> = sql`and scope_id not in (select id from incident_pauses) and org_id not in (select id from incident_pauses)`;
