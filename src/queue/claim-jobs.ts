import { sql, type RawBuilder } from "kysely";
import type { Store } from "../store/index.js";
import type { JobRow } from "./types.js";
import { notPausedJob } from "./pause-filter.js";

/**
 * Rows each scan reads per job claimed, and at least: enough that one job of another destination
 * is seen behind a row of single probes (50 open circuits each due at their cooldown's end).
 */
const SCAN = 4;
const MIN_SCAN = 128;
/**
 * The most due rows a scan reads, unless the claim is `deep`. The `run_at` index cannot skip the
 * destinations a scan leaves out: unbounded, under a backlog of 950,000 jobs of one (listed)
 * endpoint, the scan for the others read them all on every claim (174 ms on SQLite), and the
 * backlog drained at 42 jobs/s.
 */
const BOUNDED_SCAN = 2_048;

/**
 * How much of a claim each destination may take: `fresh` for one the worker does not list (it has
 * nothing in flight there), `room` for the ones it lists; a room of 0 leaves that destination's
 * jobs where they are instead of leasing them only to defer them again.
 */
export interface ClaimShares {
  fresh: number;
  room: ReadonlyMap<string, number>;
  /**
   * Slots each listed destination already holds on this node: its jobs queue behind that many
   * turns, so a destination with less in flight goes first when the claim cannot take everyone.
   */
  busy?: ReadonlyMap<string, number>;
}

/**
 * Leases up to `limit` due jobs to `workerId`, fairly. The lease is the job's `run_at` moved to
 * `leaseUntil`: if the worker dies, the job is simply due again when the lease runs out, and one
 * index on `run_at` serves both "due" and "lease expired". PostgreSQL skips rows another node is
 * claiming at the same moment (`FOR UPDATE SKIP LOCKED`); SQLite has one writer, so it needs no
 * such clause.
 *
 * Fair, not oldest-first: `order by run_at` alone let a deep backlog (an open circuit's, released
 * at once) be claimed ahead of every other destination, which then stalled 2-8 s. Two scans of the
 * oldest due rows (destinations the worker does not list, then the listed ones that have room),
 * `SCAN` × `limit` rows each, then a round-robin over tenants (`org_turn`) and, within a tenant,
 * over destinations (`turn`, behind the slots the destination already holds here: with one slot to
 * give, four slow destinations' 8 s-old backlog won it over a healthy one's 50 ms-old job, claim
 * after claim), each destination cut at its share. The scans look among the oldest
 * `BOUNDED_SCAN` due rows; a `deep` claim (the worker makes one every 10 s) looks at all of them
 * for destinations with nothing in flight here, whose jobs may be queued behind more than that of
 * busy ones'. Window functions run on SQLite
 * and PostgreSQL alike. Only the `limit` rows chosen are locked: PostgreSQL refuses `FOR UPDATE`
 * beside window functions, and locking whole scans wrote a lock per row seen.
 */
export async function claimJobs(
  store: Store,
  workerId: string,
  now: number,
  leaseUntil: number,
  limit: number,
  shares: ClaimShares = { fresh: limit, room: new Map() },
  agents?: { servedBuckets: readonly string[]; since: number },
  holder?: { by: string; since: number; only?: boolean },
  deep = false,
): Promise<JobRow[]> {
  const lock = store.capabilities.skipLocked ? sql`for update skip locked` : sql``;
  // Several nodes: a node leaves the agent deliveries of buckets no agent of its own serves to the
  // node that has one (claiming them would only defer them again). Jobs older than the resend
  // window are taken by anyone, to be given up visibly.
  const served = agents && agents.servedBuckets.length > 0 ? sql`and bucket_id not in (${sql.join([...agents.servedBuckets])})` : sql``;
  const elsewhere = agents
    ? sql`and not (kind = 'forward' and created_at >= ${agents.since} and destination_id in (select id from outputs where type = 'agent' ${served}))`
    : sql``;
  // A job whose item only its holder has in memory (an ephemeral bucket's request) is the holder's
  // alone, until it stopped (`''`) or the job has outlived any retry: then it is given up, visibly.
  // `only`: a node that runs no worker claims just the jobs it holds.
  const mine = holder
    ? holder.only
      ? sql`and held_by = ${holder.by}`
      : sql`and (held_by is null or held_by = '' or held_by = ${holder.by} or created_at < ${holder.since})`
    : sql``;
  /** What makes a job claimable, in one place. */
  const due = sql`run_at <= ${now} ${elsewhere} ${mine} ${notPausedJob}`;

  const listed = [...shares.room.keys()];
  const withRoom = listed.filter((id) => shares.room.get(id)! > 0);
  const notListed = listed.length > 0 ? sql`and destination_id not in (${sql.join(listed)})` : sql``;
  const rows = Math.max(limit * SCAN, MIN_SCAN);
  // Both scans walk the `run_at` index from the oldest due row and stop at `rows` matches or
  // `BOUNDED_SCAN` rows read (no order outside the bounded subquery, which would read all of it:
  // the window functions below order the rows). A deep claim reads every due row for
  // destinations with nothing in flight.
  const oldest = sql`select id, org_id, destination_id, run_at from jobs where ${due} order by run_at limit ${BOUNDED_SCAN}`;
  const bounded = (which: RawBuilder<unknown>) => sql`select * from (${oldest}) as oldest where ${which} limit ${rows}`;
  const waiting =
    listed.length === 0
      ? sql`select id, org_id, destination_id, run_at from jobs where ${due} order by run_at limit ${rows}`
      : deep
        ? sql`select id, org_id, destination_id, run_at from jobs where ${due} ${notListed} order by run_at limit ${rows}`
        : bounded(sql`destination_id not in (${sql.join(listed)})`);
  const seen =
    withRoom.length > 0
      ? sql`select * from (${waiting}) as waiting union all select * from (${bounded(sql`destination_id in (${sql.join(withRoom)})`)}) as active`
      : sql`select * from (${waiting}) as waiting`;
  // Shares are small integers of our own: inlined, so PostgreSQL need not infer a CASE's type.
  const held = withRoom.filter((id) => (shares.busy?.get(id) ?? 0) > 0);
  const rank =
    held.length > 0
      ? sql`turn + case destination_id ${sql.join(held.map((id) => sql`when ${id} then ${sql.lit(shares.busy!.get(id)!)}`), sql` `)} else 0 end`
      : sql`turn`;
  const share =
    withRoom.length > 0
      ? sql`case destination_id ${sql.join(withRoom.map((id) => sql`when ${id} then ${sql.lit(shares.room.get(id)!)}`), sql` `)} else ${sql.lit(shares.fresh)} end`
      : sql.lit(shares.fresh);

  const claim = sql<JobRow>`
    update jobs set locked_by = ${workerId}, run_at = ${leaseUntil}
    where id in (select id from jobs where run_at <= ${now} and id in (
      select id from (
        select id, run_at, rank, row_number() over (partition by org_id order by rank, run_at, id) as org_turn
        from (
          select id, org_id, run_at, turn, ${rank} as rank
          from (
            select id, org_id, destination_id, run_at, row_number() over (partition by destination_id order by run_at, id) as turn
            from (${seen}) as seen
          ) as numbered
          where turn <= ${share}
        ) as per_destination
      ) as per_tenant
      order by org_turn, rank, run_at
      limit ${limit}
    ) ${lock})
    returning id, org_id, scope_id, item_id, destination_id, attempt, trigger_type, run_at, locked_by, created_at, kind`;
  // A lease need not survive power loss: a lost one only means the job is due again.
  return store.leaseWrite(async (db) => (await claim.execute(db)).rows);
}
