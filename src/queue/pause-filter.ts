import { sql, type RawBuilder } from "kysely";

/**
 * The claim's whole share of incident pauses, kept to one fragment so the claim query can change
 * around it: inside `select … from jobs where …`, leaves out every job whose scope (application,
 * or a forward's bucket) or organisation is paused. Paused jobs stay due in the
 * queue, untouched, and are claimed on the first round after `resume`. Two primary-key probes
 * per candidate row, on a table that is empty outside an incident.
 */
export const notPausedJob: RawBuilder<unknown> = sql`and not exists (select 1 from incident_pauses ip where ip.id = jobs.scope_id or ip.id = jobs.org_id)`;
