import type { JobRow } from "./types.js";

/** What `HandOff.take` needs of a new job row, and sets on the rows it takes. */
export interface TakeRow {
  org_id: string;
  scope_id: string;
  destination_id: string;
  locked_by?: string | null;
  run_at: number;
}

/**
 * The direct hand-off to this node's worker, as an enqueuer (publisher, ingress intake) sees it:
 * before its commit, `take` marks the new jobs the worker can start at once as leased to it (they
 * are inserted so: no claim, no NOTIFY, no re-read); after the commit `start` runs them with `P`,
 * what the enqueuer already holds (the message rows, the requests in the clear); after a failed
 * commit `unreserve` gives their slots back. The delivery worker provides one per job kind; the
 * enqueuers know only this port.
 */
export interface HandOff<P> {
  take<T extends TakeRow>(rows: readonly T[], now: number): T[];
  unreserve(destinationIds: readonly string[]): void;
  start(jobs: JobRow[], held: P): void;
}
