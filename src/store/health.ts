import type { Logger } from "pino";
import type { HookwardenError } from "../errors/index.js";
import { describeStorageCause } from "./errors.js";

/**
 * Whether storage is failing right now, as seen by the statements this node runs (see
 * `guardedDialect`): a storage fault starts a streak, a statement that proves the fault gone ends
 * it. The streak's cause is logged once when it starts and once when it ends, not once per
 * request, so a full disk does not bury its own cause under thousands of identical lines.
 * `/ready` answers 503 while a streak lasts.
 */
export class StorageHealth {
  readonly #logger: Logger;
  #failing: HookwardenError | undefined;
  #since = 0;
  #failures = 0;
  readonly #hasRoom: () => boolean;

  /**
   * `hasRoom`: whether the disk has room again (SQLite: free space in the data directory). A
   * small write can still fit in space SQLite already holds while larger ones fail, so on its own
   * it does not end a full-disk streak: the streak ends when a write succeeds and there is room.
   */
  constructor(logger: Logger, opts: { hasRoom?: () => boolean } = {}) {
    this.#logger = logger;
    this.#hasRoom = opts.hasRoom ?? (() => true);
  }

  /** The fault of the current streak, or `undefined` while storage works. */
  get failing(): HookwardenError | undefined {
    return this.#failing;
  }

  /** Records a classified storage fault (`classifyStorageError`). */
  failure(err: HookwardenError): void {
    this.#failures++;
    if (this.#failing?.code === err.code) return;
    const wasFailing = this.#failing !== undefined;
    this.#failing = err;
    if (!wasFailing) this.#since = Date.now();
    const what = err.code === "E_STORAGE_FULL" ? "storage full" : "storage unavailable";
    this.#logger.error({ code: err.code }, `${what}: ${describeStorageCause(err)}; writes answer ${err.status} until it recovers`);
  }

  /**
   * Records a statement that succeeded. Any success ends an outage (the database answered); only a
   * committed write ends a full disk (reads keep working while it is full).
   */
  success(wrote: boolean): void {
    const failing = this.#failing;
    if (failing === undefined) return;
    if (failing.code === "E_STORAGE_FULL" && (!wrote || !this.#hasRoom())) return;
    this.#failing = undefined;
    const what = failing.code === "E_STORAGE_FULL" ? "storage full" : "storage unavailable";
    this.#logger.info({ code: failing.code, failures: this.#failures, ms: Date.now() - this.#since }, `${what}: recovered`);
    this.#failures = 0;
  }
}
