import type { Context } from "../context/index.js";
import type { Publisher } from "../messages/publisher.js";
import { OPERATIONAL_ROWS, type MapContext, type OperationalEvent, type OperationalRow } from "./event-types.js";
import { EndpointEventLog } from "./endpoint-log.js";
import { findOperationalApp } from "./internal-app.js";
import { VerificationBursts } from "./verification-bursts.js";

/** Events mapped but not yet published, at most; past it new ones are dropped (and logged). */
const MAX_PENDING = 1_000;

/**
 * Operational webhooks: a subscriber of the events bus that turns the rows of
 * `OPERATIONAL_ROWS` into messages of the organisation's hidden operational application, so the
 * delivery engine signs (Standard Webhooks), retries, SSRF-checks and records them like any
 * other message. The body is Svix's: `{type, timestamp, data}`.
 *
 * Delivery is at least once from the moment the message is committed; an event raised just
 * before a crash, before that commit, is lost (the bus is in-process), which is also why an
 * organisation without an enabled operational endpoint costs no message write. Events that name
 * an endpoint are also kept, bounded, in that endpoint's log (`endpoint-log.ts`) for the console.
 */
export class OperationalWebhooks {
  readonly #ctx: Context;
  readonly #publisher: Pick<Publisher, "publish">;
  readonly #bursts: VerificationBursts;
  readonly #pending = new Set<Promise<void>>();
  readonly #off: (() => void)[] = [];
  readonly #log: Pick<EndpointEventLog, "record">;

  constructor(
    ctx: Context,
    publisher: Pick<Publisher, "publish">,
    rows: readonly OperationalRow[] = OPERATIONAL_ROWS,
    log: Pick<EndpointEventLog, "record"> = new EndpointEventLog(ctx),
  ) {
    this.#ctx = ctx;
    this.#publisher = publisher;
    this.#log = log;
    this.#bursts = new VerificationBursts(ctx.config.verificationFailingThreshold, ctx.config.verificationFailingWindow);
    this.#mapContext = this.#makeMapContext();
    for (const r of rows) this.#off.push(ctx.events.on(r.on, (payload) => this.#handle(r, payload)));
  }

  /** Sends one operational event now (for code that has no bus event to map). */
  send(event: OperationalEvent): Promise<void> {
    return this.#track(Promise.resolve(event));
  }

  /** Resolves once every event raised so far is published (or given up). */
  async drain(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  /** Stops listening; `drain` then waits for what was already raised. */
  stop(): void {
    for (const off of this.#off.splice(0)) off();
  }

  #handle(r: OperationalRow, payload: unknown): void {
    // The mapping's synchronous part (the burst counter) runs now, in the emitter's turn; most
    // delivery attempts map to nothing synchronously and cost no promise.
    const out = r.map(payload as never, this.#mapContext);
    if (out !== undefined) void this.#track(Promise.resolve(out));
  }

  readonly #mapContext: MapContext;

  #makeMapContext(): MapContext {
    const { store, clock, config } = this.#ctx;
    return {
      get now() {
        return clock.now();
      },
      app: (id) => store.db.selectFrom("applications").selectAll().where("id", "=", id).executeTakeFirst(),
      endpoint: (id) => store.db.selectFrom("endpoints").selectAll().where("id", "=", id).executeTakeFirst(),
      message: (id) => store.db.selectFrom("messages").selectAll().where("id", "=", id).executeTakeFirst(),
      bursts: this.#bursts,
      verificationWindowMs: config.verificationFailingWindow,
    };
  }

  #track(mapped: Promise<OperationalEvent | undefined>): Promise<void> {
    if (this.#pending.size >= MAX_PENDING) {
      this.#ctx.logger.warn({ pending: this.#pending.size }, "operational webhooks: too many events waiting; one was dropped");
      return Promise.resolve();
    }
    const p: Promise<void> = mapped
      // The endpoint's own log (its console page) is kept whether or not anyone subscribes.
      .then((event) => (event ? Promise.all([this.#log.record(event), this.#publish(event)]) : undefined))
      .then(() => undefined)
      .catch((err: unknown) => this.#ctx.logger.error({ err }, "operational webhook could not be published"))
      .finally(() => this.#pending.delete(p));
    this.#pending.add(p);
    return p;
  }

  async #publish(event: OperationalEvent): Promise<void> {
    const { store, clock } = this.#ctx;
    const app = await findOperationalApp(this.#ctx, event.orgId);
    if (!app) return;
    const enabled = await store.db.selectFrom("endpoints").select("id").where("app_id", "=", app.id).where("disabled", "=", 0).limit(1).executeTakeFirst();
    if (!enabled) return;
    await this.#publisher.publish(app, {
      eventType: event.type,
      payload: { type: event.type, timestamp: new Date(clock.now()).toISOString(), data: event.data },
    });
  }
}
