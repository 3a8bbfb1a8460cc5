/**
 * Counts refused signatures per input in a fixed window and says when an input crosses the
 * threshold: once per window, so a flood of forged requests yields one operational event every
 * `windowMs`, not one per request. Memory is bounded (inputs seen in the current windows only,
 * at most `MAX_INPUTS`; past that the oldest are forgotten).
 */
export class VerificationBursts {
  static readonly MAX_INPUTS = 10_000;
  readonly #threshold: number;
  readonly #windowMs: number;
  readonly #inputs = new Map<string, { since: number; count: number; reported: boolean }>();

  constructor(threshold: number, windowMs: number) {
    this.#threshold = threshold;
    this.#windowMs = windowMs;
  }

  /** Records one failure; returns the burst when this one crosses the threshold. */
  hit(inputId: string, now: number): { failures: number; since: number } | undefined {
    let w = this.#inputs.get(inputId);
    if (!w || now - w.since >= this.#windowMs) {
      this.#inputs.delete(inputId);
      if (this.#inputs.size >= VerificationBursts.MAX_INPUTS) this.#inputs.delete(this.#inputs.keys().next().value!);
      w = { since: now, count: 0, reported: false };
      this.#inputs.set(inputId, w);
    }
    w.count += 1;
    if (w.reported || w.count < this.#threshold) return undefined;
    w.reported = true;
    return { failures: w.count, since: w.since };
  }
}
