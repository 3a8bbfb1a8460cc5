/**
 * What every phase of `npm run bench` shares: the environment switches (parsed once, here), the
 * JSON-line output, the payload, and the cleanups that run on success, failure and Ctrl-C alike.
 */
import { loadavg } from "node:os";
import pg from "pg";
import { round } from "./load.js";

export type Dialect = "sqlite" | "postgres";

export const QUICK = process.env.BENCH_QUICK === "1";
export const DIALECTS = (process.env.BENCH_DIALECTS ?? "sqlite,postgres").split(",").filter((d): d is Dialect => d === "sqlite" || d === "postgres");
/** In-flight requests: the load generator's, and the gateway's towards one destination. */
export const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
export const PROFILE = process.env.BENCH_PROFILE === "1";
export const PG_URL = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const PHASES = new Set((process.env.BENCH_PHASES ?? "raw,e2e,ingest,rss,floor,ratio,agent,brokers,functions,retention,bullmq,fanout,fairness,switches").split(","));
/** `fairness` phase: the scenarios to run (comma-separated), all when unset. */
export const FAIRNESS_SCENARIOS = process.env.BENCH_FAIRNESS?.split(",");
/** Open-loop latency runs last this long. */
export const LATENCY_SECONDS = QUICK ? 3 : 10;
/** A fixed rate (req/s or msg/s) for the latency runs instead of half the measured peak. */
export const LATENCY_RATE = Number(process.env.BENCH_LATENCY_RATE ?? 0) || undefined;
/**
 * BENCH_EVENT_BYTES: the event's size in bytes of JSON, for every phase (default: the ~1 KB event
 * below). Real providers' webhooks run larger (GitHub's and Stripe's are often 3-20 KB), and past
 * ~1.4 KB PostgreSQL stores rows differently (TOAST: migration 0019). Lines then say `event_bytes`.
 */
export const EVENT_BYTES = Number(process.env.BENCH_EVENT_BYTES ?? 0) || undefined;

const startedAt = Date.now();
/** Progress on stderr, with the seconds since the run started (the whole run should stay under ~6 min). */
export const log = (msg: string): void => void process.stderr.write(`[bench +${Math.round((Date.now() - startedAt) / 1000)}s] ${msg}\n`);
export const emit = (line: Record<string, unknown>): void =>
  void process.stdout.write(`${JSON.stringify({ ...line, ...(EVENT_BYTES ? { event_bytes: EVENT_BYTES } : {}), loadavg_1m: round(loadavg()[0]!, 2) })}\n`);

/** The event with an empty note, in bytes of JSON (an id of eight digits, as every event has). */
const BARE_EVENT = 179;
/** The note that makes the event `EVENT_BYTES` long (or ~1 KB). */
const NOTE_LENGTH = EVENT_BYTES ? Math.max(0, EVENT_BYTES - BARE_EVENT) : 840;

/** A ~1 KB event (`BENCH_EVENT_BYTES`), the same bytes for a raw client and the gateway. */
export function eventPayload(i: number): Record<string, unknown> {
  return {
    id: `evt_${String(i).padStart(8, "0")}`,
    type: "invoice.paid",
    created: 1_700_000_000 + i,
    data: { customer: "cus_8f2kQ0aLm3", amount: 1999, currency: "eur", lines: [{ sku: "plan-pro", qty: 1 }], note: "x".repeat(NOTE_LENGTH) },
  };
}

/** A publish request's body (Svix's `MessageIn`) carrying `eventPayload(i)`. */
export const publishBody = (i: number): string => JSON.stringify({ eventType: "invoice.paid", payload: eventPayload(i) });

/**
 * What the `e2e` phase measured, per dialect, for phases that compare against it later in the same
 * run (`bullmq`, `floor`). `totalCpuMsPerMsg` includes the datastore (PostgreSQL's server
 * processes); `gatewayCpuMsPerMsg` is the gateway's process alone, as the floor's CPU is.
 */
export const e2eResults = new Map<Dialect, { rate: number; gatewayCpuMsPerMsg: number; totalCpuMsPerMsg: number; p50: number; p99: number }>();

/** What the `ingest` phase measured, per dialect, for the `floor` phase's ratios. */
export const ingestResults = new Map<Dialect, { rate: number; gatewayCpuMsPerPost: number }>();

/** Run in reverse order of registration by `runCleanups`; a phase removes its own once done. */
export const cleanups: (() => Promise<void>)[] = [];

export async function runCleanups(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c().catch((err: unknown) => log(`cleanup failed: ${String(err)}`));
}

/** Registers `cleanup`, runs `fn`, then always runs and unregisters `cleanup`. */
export async function withCleanup<T>(cleanup: () => Promise<void>, fn: () => Promise<T>): Promise<T> {
  cleanups.push(cleanup);
  try {
    return await fn();
  } finally {
    const at = cleanups.indexOf(cleanup);
    if (at >= 0) {
      cleanups.splice(at, 1);
      await cleanup();
    }
  }
}

/**
 * Vacuums PostgreSQL's system catalogs, best effort. Each bench run and each test file creates and
 * drops schemas of thirty tables; where autovacuum is off (as on the bench machine) their dead
 * catalog rows pile up (90,000 in pg_attribute after one session) and every statement's planning
 * reads through them. Once at the start of a run, so runs compare.
 */
export async function vacuumCatalogs(): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  try {
    await client.connect();
    for (const table of ["pg_attribute", "pg_depend", "pg_class", "pg_index", "pg_trigger", "pg_type", "pg_constraint", "pg_attrdef", "pg_namespace", "pg_statistic"]) await client.query(`vacuum ${table}`);
  } catch (err) {
    log(`could not vacuum PostgreSQL's catalogs (${(err as Error).message}); figures may drift between runs`);
  } finally {
    await client.end().catch(() => {});
  }
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  await client.query(`drop schema if exists ${schema} cascade`).finally(() => client.end());
}
