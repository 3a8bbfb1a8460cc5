import type { Clock } from "../clock/index.js";
import type { StoredRequest } from "./stored-request.js";

/** Outputs' worth of ephemeral requests a process holds at most; beyond it new ones get a 503. */
export const MAX_HELD = 10_000;

/**
 * Ephemeral buckets' requests, in this process's memory only: the documented trade of an
 * ephemeral bucket is privacy over durability (nothing of the request is stored, so a crash loses
 * what is still pending here). Their forward jobs are ordinary jobs of the engine (queue,
 * retries, gates, attempts) marked `held_by` this process's worker, which alone can send them.
 * A request is let go when its last job is over, or once no job of it can be alive any more.
 */
export class HeldRequests {
  /** The worker whose jobs these are (`jobs.held_by`). */
  readonly holder: string;
  readonly #clock: Clock;
  readonly #lifetime: number;
  readonly #held = new Map<string, { stored: StoredRequest; jobs: number; until: number }>();
  #count = 0;

  constructor(holder: string, clock: Clock, lifetimeMs: number) {
    this.holder = holder;
    this.#clock = clock;
    this.#lifetime = lifetimeMs;
  }

  /** Jobs (one per output) held now. */
  get pending(): number {
    return this.#count;
  }

  /** Whether `jobs` more can be held without exceeding the memory bound. */
  hasRoom(jobs: number): boolean {
    if (this.#count + jobs > MAX_HELD) this.#sweep();
    return this.#count + jobs <= MAX_HELD;
  }

  /** Holds `stored` for `jobs` jobs (before they are committed, so no claim can miss it). */
  hold(requestId: string, stored: StoredRequest, jobs: number): void {
    if (jobs <= 0) return;
    this.#held.set(requestId, { stored, jobs, until: this.#clock.now() + this.#lifetime });
    this.#count += jobs;
  }

  get(requestId: string): StoredRequest | undefined {
    return this.#held.get(requestId)?.stored;
  }

  /** One job of the request is over (or was never committed). */
  release(requestId: string): void {
    const h = this.#held.get(requestId);
    if (!h) return;
    h.jobs -= 1;
    this.#count -= 1;
    if (h.jobs <= 0) this.#held.delete(requestId);
  }

  /** Drops requests whose jobs cannot be alive any more (deleted with their bucket, given up elsewhere). */
  #sweep(): void {
    const now = this.#clock.now();
    for (const [id, h] of this.#held) {
      if (h.until > now) continue;
      this.#count -= h.jobs;
      this.#held.delete(id);
    }
  }
}
