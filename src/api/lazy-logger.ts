import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import type { Bindings, ChildLoggerOptions, LevelWithSilentOrString } from "pino";

/** pino's `LogFn` overloads, as one signature: the arguments are passed on unchanged. */
type LogArgs = [obj: unknown, msg?: string, ...args: unknown[]];

/**
 * A request's logger (`request.log`) that becomes pino's child only when something logs through
 * it. Fastify makes a child logger for every request, and pino's `child` serialises the bindings
 * through the redaction paths at once: 0.9% of the gateway's time per inbound request in the
 * ingest bench, for a logger that almost every request never uses (request lines are written by
 * `logApiRequests` with the parent logger). The line a request does log is the same: the child is
 * made from the same parent, bindings and options, on first use.
 */
class LazyChild {
  #real: FastifyBaseLogger | undefined;
  readonly #parent: FastifyBaseLogger;
  readonly #bindings: Bindings;
  readonly #opts: ChildLoggerOptions;

  constructor(parent: FastifyBaseLogger, bindings: Bindings, opts: ChildLoggerOptions) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#opts = opts;
  }

  get #logger(): FastifyBaseLogger {
    return (this.#real ??= this.#parent.child(this.#bindings, this.#opts));
  }

  get level(): LevelWithSilentOrString {
    return this.#real?.level ?? this.#opts.level ?? this.#parent.level;
  }
  set level(level: LevelWithSilentOrString) {
    this.#logger.level = level;
  }

  fatal(...args: LogArgs): void {
    this.#logger.fatal(...args);
  }
  error(...args: LogArgs): void {
    this.#logger.error(...args);
  }
  warn(...args: LogArgs): void {
    this.#logger.warn(...args);
  }
  info(...args: LogArgs): void {
    this.#logger.info(...args);
  }
  debug(...args: LogArgs): void {
    this.#logger.debug(...args);
  }
  trace(...args: LogArgs): void {
    this.#logger.trace(...args);
  }
  silent(...args: LogArgs): void {
    this.#logger.silent(...args);
  }

  child(bindings: Bindings, opts?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#logger.child(bindings, opts);
  }
}

/** Every request of `app` gets a `LazyChild` in place of an eager pino child. */
export function lazyRequestLoggers(app: FastifyInstance): void {
  app.setChildLoggerFactory((logger, bindings, opts) => new LazyChild(logger, bindings, opts) as unknown as FastifyBaseLogger);
}
