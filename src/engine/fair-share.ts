/**
 * Who may take the node's next delivery slots. Three rules, so that slow or failing destinations
 * cannot starve the others (issue 10: four endpoints that never answered held all 128 slots for
 * 30 s, and four that answered after 20 s starved a healthy one indefinitely):
 * - a destination holds at most `perDestination` slots (`endpointConcurrency`);
 * - the last `reserve` slots (one in eight) go only to *fast* destinations holding fewer than
 *   `reserveEach` of them: fast means its recent attempts took under `slowMs` and none of its
 *   attempts in flight has been open that long. A destination that is slow, never answers or
 *   times out fills at most `total - reserve` slots, whatever their number;
 * - the claim takes at most a destination's room from the queue and goes round-robin over
 *   tenants and destinations (queue/claim-jobs.ts), so a deep backlog is not claimed first.
 * Counts are per node: each node shares its own slots.
 */
export class FairShare {
  readonly #perDestination: number;
  readonly #reserve: number;
  readonly #reserveEach: number;
  readonly #slowMs: number;
  /** The most slots one destination can hold on this node (see `atCap`). */
  readonly #most: number;
  /** Real time, not the injectable clock: how long destinations take to answer. */
  readonly #now: () => number;
  /** Attempts started and not settled, per destination: their start times (at most `perDestination`). */
  readonly #running = new Map<string, number[]>();
  /** Slots promised to jobs being committed by the publisher or the intake (`DeliveryWorker.take`). */
  readonly #held = new Map<string, number>();
  /** Slots held by all destinations together: running plus promised (see `held`). */
  #total = 0;
  /** Destinations whose recent attempts were slow: smoothed duration in ms. Bounded, oldest out. */
  readonly #slow = new Map<string, number>();

  constructor(opts: { total: number; perDestination: number; slowMs: number; now?: () => number }) {
    this.#now = opts.now ?? (() => performance.now());
    this.#perDestination = opts.perDestination;
    this.#reserve = Math.floor(opts.total / 8);
    this.#reserveEach = Math.max(1, Math.floor(this.#reserve / 4));
    this.#slowMs = opts.slowMs;
    this.#most = Math.min(this.#perDestination, Math.max(opts.total - this.#reserve, this.#reserveEach));
  }

  /** Slots a destination holds: attempts running plus jobs promised to it. */
  busy(id: string): number {
    return (this.#running.get(id)?.length ?? 0) + (this.#held.get(id) ?? 0);
  }

  /** True when the destination already holds its `perDestination` slots. */
  full(id: string): boolean {
    return this.busy(id) >= this.#perDestination;
  }

  /**
   * True when the destination holds as many slots as it can ever get on this node: its
   * `perDestination`, or all the slots outside the reserve when the node has fewer than that
   * (`--delivery-concurrency 32 --endpoint-concurrency 32`: one endpoint gets at most 28).
   */
  atCap(id: string): boolean {
    return this.busy(id) >= this.#most;
  }

  /** How many more slots `id` may take now, with `free` slots left on the node. */
  room(id: string, free: number): number {
    const busy = this.busy(id);
    const own = this.#perDestination - busy;
    let room = Math.min(own, free - this.#reserve);
    if (busy < this.#reserveEach && this.#fast(id)) room = Math.max(room, Math.min(own, free, this.#reserveEach - busy));
    return Math.max(0, room);
  }

  /**
   * How many jobs one claim may lease with `free` slots left: the reserve is claimed only once
   * the rest is taken, and then only by the fast (`shares` gives the others no room).
   */
  claimable(free: number): number {
    return free > this.#reserve ? free - this.#reserve : free;
  }

  /** Of `free` slots, those outside the reserve. */
  shared(free: number): number {
    return Math.max(0, free - this.#reserve);
  }

  /**
   * The shares a claim needs: `fresh`, the room of a destination this node knows nothing about
   * (nothing in flight, not known slow), and `room` for every other one it knows (0: skip it).
   */
  shares(free: number): { fresh: number; room: Map<string, number>; busy: Map<string, number> } {
    const fresh = Math.max(0, Math.max(Math.min(this.#perDestination, free - this.#reserve), Math.min(this.#perDestination, free, this.#reserveEach)));
    const room = new Map<string, number>();
    for (const id of [...this.#running.keys(), ...this.#held.keys(), ...this.#slow.keys()]) {
      if (!room.has(id)) room.set(id, this.room(id, free));
    }
    for (const [id, n] of room) if (n === fresh && this.busy(id) === 0) room.delete(id);
    const busy = new Map<string, number>();
    for (const id of room.keys()) if (this.busy(id) > 0) busy.set(id, this.busy(id));
    return { fresh, room, busy };
  }

  /** Slots that destinations hold, all together (those a claim leased are not counted until they start). */
  get inUse(): number {
    return this.#total;
  }

  hold(id: string): void {
    this.#held.set(id, (this.#held.get(id) ?? 0) + 1);
    this.#total += 1;
  }

  unhold(id: string): void {
    const had = this.#held.get(id) ?? 0;
    if (had > 0) this.#total -= 1;
    const n = had - 1;
    if (n <= 0) this.#held.delete(id);
    else this.#held.set(id, n);
  }

  /** An attempt to `id` starts now; returns its settle function, which learns its duration. */
  start(id: string): () => void {
    const now = this.#now();
    const list = this.#running.get(id) ?? [];
    list.push(now);
    this.#running.set(id, list);
    this.#total += 1;
    return () => {
      const at = list.indexOf(now);
      if (at >= 0) {
        list.splice(at, 1);
        this.#total -= 1;
      }
      if (list.length === 0 && this.#running.get(id) === list) this.#running.delete(id);
      this.#learn(id, this.#now() - now);
    };
  }

  /** Attempts in flight to `id`. */
  running(id: string): number {
    return this.#running.get(id)?.length ?? 0;
  }

  /** Its recent attempts took under `slowMs`, and none in flight has been open that long. */
  fast(id: string): boolean {
    return this.#fast(id);
  }

  #fast(id: string): boolean {
    if ((this.#slow.get(id) ?? 0) >= this.#slowMs) return false;
    const oldest = this.#running.get(id)?.[0];
    return oldest === undefined || this.#now() - oldest < this.#slowMs;
  }

  #learn(id: string, ms: number): void {
    const prev = this.#slow.get(id);
    // Smoothed so one slow answer does not shut a destination out of the reserve, but a few do.
    const next = prev === undefined ? ms : prev * 0.7 + ms * 0.3;
    this.#slow.delete(id);
    if (next >= this.#slowMs / 2) {
      this.#slow.set(id, next);
      if (this.#slow.size > 10_000) this.#slow.delete(this.#slow.keys().next().value!);
    }
  }
}
