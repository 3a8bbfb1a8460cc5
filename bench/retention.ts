/**
 * `retention` phase of `npm run bench` (alone: `BENCH_PHASES=retention`): how big the data stays
 * after N simulated days of traffic, with retention on (`--retention RETENTION_DAYS d`) and, as
 * the baseline measured in the same run, effectively off (`--retention 3650d`). In this process,
 * with the fake clock: each simulated day publishes `PER_DAY` ~1 KB events to one endpoint on a
 * local receiver (answering a ~200-byte body), delivers them for real, moves the clock one day on
 * and runs one retention pass, as the server's timer would. Every `EVERY` days, and at the end,
 * one JSON line: SQLite `data_dir_bytes` (every file in the data directory, WAL included) and
 * `db_bytes` (page_count × page_size); PostgreSQL `db_bytes` (pg_total_relation_size of the
 * messages and attempts tables, indexes and TOAST included; autovacuum decides when deleted
 * space is reused, so the curve is less smooth).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { findApplication } from "../src/applications/index.js";
import { FakeClock } from "../src/clock/index.js";
import { loadConfig } from "../src/config/index.js";
import { createLogger } from "../src/logger/index.js";
import { runRetention } from "../src/retention/index.js";
import { startHookwarden } from "../src/server/index.js";
import { PG_URL, QUICK, dropSchema, emit, eventPayload, log, withCleanup, type Dialect } from "./common.js";
import { round } from "./load.js";

const DAYS = Number(process.env.BENCH_RETENTION_DAYS_SIMULATED ?? (QUICK ? 30 : 60));
const PER_DAY = Number(process.env.BENCH_RETENTION_PER_DAY ?? (QUICK ? 200 : 500));
const RETENTION_DAYS = QUICK ? 7 : 14;
const EVERY = Math.min(DAYS, QUICK ? 10 : 15);
const DAY = 86_400_000;

function dirBytes(dir: string): number {
  let total = 0;
  for (const f of readdirSync(dir)) total += statSync(join(dir, f)).size;
  return total;
}

async function receiver(): Promise<{ url: string; close: () => Promise<void> }> {
  const answer = JSON.stringify({ received: true, note: "y".repeat(180) });
  const srv = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end(answer));
  });
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(srv.address() as { port: number }).port}/hook`,
    close: async () => {
      srv.closeAllConnections();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    },
  };
}

async function simulate(dialect: Dialect, mode: "on" | "off", endpointUrl: string): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), "hookwarden-bench-retention-"));
  const schema = dialect === "postgres" ? `hwb_ret_${randomBytes(4).toString("hex")}` : undefined;
  const adminToken = `hwk_bench_${randomBytes(24).toString("base64url")}`;
  const config = loadConfig(
    {
      host: "127.0.0.1",
      port: 0,
      dataDir,
      masterKey: randomBytes(32).toString("base64"),
      adminToken,
      allowPrivateNetworks: ["127.0.0.0/8"],
      logLevel: "warn",
      retention: mode === "on" ? `${RETENTION_DAYS}d` : "3650d",
      retentionInterval: "24h",
      ...(dialect === "postgres" ? { databaseUrl: PG_URL, databaseSchema: schema } : {}),
    },
    {},
  );
  const clock = new FakeClock(Date.now());
  const hw = await startHookwarden(config, { clock, logger: createLogger({ level: "warn", destination: process.stderr }) });
  await withCleanup(
    async () => {
      await hw.stop();
      rmSync(dataDir, { recursive: true, force: true });
      if (schema) await dropSchema(schema);
    },
    async () => {
      const api = async (path: string, body: unknown) => {
        const res = await fetch(hw.url + path, { method: "POST", headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" }, body: JSON.stringify(body) });
        if (!res.ok) throw new Error(`${path} answered ${res.status}: ${await res.text()}`);
        return (await res.json()) as { id: string };
      };
      const { id } = await api("/api/v1/app", { name: "bench-retention" });
      await api(`/api/v1/app/${id}/endpoint`, { url: endpointUrl });
      const orgId = (await hw.ctx.store.db.selectFrom("applications").select("org_id").where("id", "=", id).executeTakeFirstOrThrow()).org_id;
      const app = await findApplication(hw.ctx, orgId, id);
      const db = hw.ctx.store.db;
      const sizes = async () => {
        if (dialect === "sqlite") {
          const pages = Number(Object.values((await sql.raw("pragma page_count").execute(db)).rows[0] as object)[0]);
          const size = Number(Object.values((await sql.raw("pragma page_size").execute(db)).rows[0] as object)[0]);
          return { data_dir_bytes: dirBytes(dataDir), db_bytes: pages * size };
        }
        const r = await sql<{ n: string }>`select pg_total_relation_size(${`${schema}.messages`}::regclass) + pg_total_relation_size(${`${schema}.attempts`}::regclass) as n`.execute(db);
        return { db_bytes: Number(r.rows[0]!.n) };
      };
      let n = 0;
      let cleanerMs = 0;
      let expired = 0;
      let reclaimedPages = 0;
      for (let day = 1; day <= DAYS; day++) {
        for (let i = 0; i < PER_DAY; i += 50) {
          await Promise.all(Array.from({ length: Math.min(50, PER_DAY - i) }, () => hw.publisher.publish(app, { eventType: "invoice.paid", payload: eventPayload(n++) })));
        }
        await hw.worker.runUntilIdle();
        clock.advance(DAY);
        const t0 = performance.now();
        const report = await runRetention(hw.ctx);
        expired += report.messages;
        reclaimedPages += report.reclaimedPages;
        cleanerMs += performance.now() - t0;
        if (day % EVERY === 0 || day === DAYS) {
          const s = await sizes();
          emit({ figure: "retention_size", dialect, retention: mode === "on" ? `${RETENTION_DAYS}d` : "off (3650d)", day, messages_per_day: PER_DAY, messages: n, messages_expired: expired, reclaimed_pages: reclaimedPages, ...s });
          log(`retention ${dialect} ${mode}: day ${day}, ${JSON.stringify(s)}`);
        }
      }
      emit({ figure: "retention_cleaner_ms_per_day", dialect, retention: mode === "on" ? `${RETENTION_DAYS}d` : "off (3650d)", ms: round(cleanerMs / DAYS, 1), messages_per_day: PER_DAY });
    },
  );
}

export async function retentionPhase(dialect: Dialect): Promise<void> {
  log(`retention (${dialect}): ${DAYS} simulated days of ${PER_DAY} messages, retention ${RETENTION_DAYS}d vs off`);
  const r = await receiver();
  try {
    await simulate(dialect, "off", r.url);
    await simulate(dialect, "on", r.url);
  } finally {
    await r.close();
  }
}
