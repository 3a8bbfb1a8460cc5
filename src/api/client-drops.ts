import type { Logger } from "../logger/index.js";

/** Why a client's connection or request ended without an answer. */
export type DropReason = "aborted" | "timeout" | "refused";

/**
 * Log lines for connections that clients abandon, time out or are refused, aggregated: one short
 * line (no stack: it is the client's doing, not a bug) for the first drop, then one summary line
 * per `intervalMs` with the counts. A client that held 482 stalled bodies and let go of them at
 * once wrote 482 error lines with a stack trace each; now it writes two.
 */
export class ClientDrops {
  readonly #logger: Logger;
  readonly #intervalMs: number;
  #counts: Record<DropReason, number> = { aborted: 0, timeout: 0, refused: 0 };
  #pending = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(logger: Logger, intervalMs = 60_000) {
    this.#logger = logger;
    this.#intervalMs = intervalMs;
  }

  record(reason: DropReason, ip: string | undefined): void {
    if (this.#timer === undefined) {
      // The first drop of a quiet period is logged at once; the rest wait for the summary.
      this.#logger.warn({ reason, ip }, "client connection dropped");
      this.#timer = setInterval(() => this.#report(), this.#intervalMs);
      this.#timer.unref();
      return;
    }
    this.#counts[reason]++;
    this.#pending++;
  }

  /** Writes the summary of what is counted and stops the timer (server shutdown). */
  stop(): void {
    this.#report();
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #report(): void {
    if (this.#pending === 0) {
      // A quiet period: the next drop is logged at once again.
      clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    this.#logger.warn({ dropped: this.#counts, total: this.#pending, periodMs: this.#intervalMs }, "more client connections dropped");
    this.#counts = { aborted: 0, timeout: 0, refused: 0 };
    this.#pending = 0;
  }
}
