/**
 * How long this node's recent accepts took, from the moment the request's body was in to the
 * answer: an unknown input's answer is held for one of them, drawn at random, so the two answers'
 * times follow the same distribution. Waiting for the intake's next commit alone (`barrier()`) was
 * not enough: with nothing else to store that turn costs a fsync of an unchanged WAL on SQLite
 * and nothing on PostgreSQL, while a real accept pays the writes of its transaction.
 */
export class AcceptTimes {
  readonly #samples = new Float64Array(256);
  #count = 0;
  #next = 0;
  readonly #random: () => number;

  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  record(ms: number): void {
    this.#samples[this.#next] = ms;
    this.#next = (this.#next + 1) % this.#samples.length;
    if (this.#count < this.#samples.length) this.#count++;
  }

  /** One of the recent durations, at random; 0 before the first accept. */
  draw(): number {
    if (this.#count === 0) return 0;
    return this.#samples[Math.floor(this.#random() * this.#count)]!;
  }
}
