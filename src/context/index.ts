import type { Clock } from "../clock/index.js";
import type { Config } from "../config/index.js";
import type { EventBus } from "../events/index.js";
import type { Logger } from "../logger/index.js";
import type { JobQueue } from "../queue/job-queue.js";
import type { Store } from "../store/index.js";
import type { Keyring } from "../vault/envelope.js";
import type { Tracing } from "../tracing/index.js";

/**
 * Everything a piece of business code may depend on, compiled once at start and passed as the
 * first argument (no module-level singletons, so a test injects a fake clock or a second store).
 */
export interface Context {
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly store: Store;
  /** Where jobs are queued: producers enqueue through it, the local worker consumes from it. */
  readonly queue: JobQueue;
  readonly keyring: Keyring;
  readonly events: EventBus;
  /** OpenTelemetry tracing; undefined when no OTLP endpoint is configured (the default). */
  readonly tracing?: Tracing | undefined;
}
