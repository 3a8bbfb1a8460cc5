/**
 * Phases `fanout` and `backlog` of `npm run bench` (issue #10):
 * - `fanout`: one message to 100 endpoints (all on the bench receiver), deliveries/s and gateway
 *   CPU per delivery;
 * - `backlog`: the state after an outage, a backlog of BENCH_BACKLOG pending jobs (1,000,000; 50,000
 *   with BENCH_QUICK) written straight into the stopped gateway's database, then the gateway
 *   started and the time until the receiver has every delivery: drain rate, peak RSS, time to the
 *   first delivery. Long (minutes per dialect at full size), so it is not in the default phases.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { GatewayClient } from "../test/helpers/gateway-client.js";
import { gatewaySecrets, spawnGateway, type GatewayProcess } from "../test/helpers/gateway-process.js";
import { CONCURRENCY, PG_URL, QUICK, dropSchema, emit, eventPayload, log, withCleanup, type Dialect } from "./common.js";
import { gatewayArgs, withGateway } from "./gateway.js";
import { benchNow, closedLoop, cpuMsOf, memoryOf, postgresCpuMs, round } from "./load.js";
import type { ReceiverProcess } from "./receiver-process.js";

const FANOUT_ENDPOINTS = 100;
const FANOUT_MESSAGES = QUICK ? 100 : 500;
const BACKLOG = Number(process.env.BENCH_BACKLOG ?? (QUICK ? 50_000 : 1_000_000));

export async function fanout(dialect: Dialect, receiver: ReceiverProcess): Promise<void> {
  await withGateway(dialect, "fanout", async (gw, client) => {
    const app = await client.createApp("bench-fanout");
    for (let i = 0; i < FANOUT_ENDPOINTS; i++) await client.createEndpoint(app.id, `${receiver.url}/hook/${i}`);
    const body = JSON.stringify({ eventType: "invoice.paid", payload: eventPayload(0) });
    const warm = (await receiver.track(FANOUT_ENDPOINTS * 5, 60_000)).done;
    for (let i = 0; i < 5; i++) await client.publish(app.id, body);
    await warm;
    const deliveries = FANOUT_MESSAGES * FANOUT_ENDPOINTS;
    log(`${dialect}: fan-out, ${FANOUT_MESSAGES} messages to ${FANOUT_ENDPOINTS} endpoints each`);
    const done = (await receiver.track(deliveries, 600_000)).done;
    const cpu0 = cpuMsOf(gw.pid);
    const pg0 = dialect === "postgres" ? postgresCpuMs() : 0;
    const t0 = benchNow();
    await closedLoop(FANOUT_MESSAGES, Math.min(CONCURRENCY, 8), async (i) => {
      const r = await client.publish(app.id, JSON.stringify({ eventType: "invoice.paid", payload: eventPayload(i) }));
      if (r.status !== 202) throw new Error(`publish answered ${r.status}`);
    });
    const published = benchNow();
    const last = (await done).last;
    const elapsed = last - t0;
    const gatewayCpu = (cpuMsOf(gw.pid) - cpu0) / deliveries;
    const datastoreCpu = dialect === "postgres" ? (postgresCpuMs() - pg0) / deliveries : 0;
    emit({
      bench: "fanout_delivered",
      dialect,
      value: Math.round((deliveries / elapsed) * 1000),
      unit: "deliveries/s",
      messages: FANOUT_MESSAGES,
      endpoints_per_message: FANOUT_ENDPOINTS,
      messages_published_per_s: Math.round((FANOUT_MESSAGES / (published - t0)) * 1000),
      gateway_cpu_ms_per_delivery: round(gatewayCpu, 3),
      datastore_cpu_ms_per_delivery: round(datastoreCpu, 3),
      concurrency: CONCURRENCY,
    });
  });
}

/** Writes `n` messages and one due job each for `endpointId` straight into the database. */
async function seed(dialect: Dialect, dataDir: string, schema: string, ids: { org: string; app: string; endpoint: string }, n: number): Promise<void> {
  const payload = JSON.stringify(eventPayload(0));
  const now = Date.now();
  if (dialect === "sqlite") {
    const db = new Database(join(dataDir, "hookwarden.db"));
    try {
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = OFF");
      const seq = `with recursive seq(i) as (select 0 union all select i + 1 from seq where i < ${n - 1})`;
      db.transaction(() => {
        db.prepare(`${seq} insert into messages (id, org_id, app_id, event_id, event_type, payload, channels, tags, created_at, deliver_at)
          select printf('msg_backlog%09d', i), ?, ?, null, 'invoice.paid', ?, null, null, ?, null from seq`).run(ids.org, ids.app, payload, now);
        db.prepare(`${seq} insert into jobs (id, org_id, scope_id, item_id, destination_id, attempt, trigger_type, run_at, locked_by, created_at, kind)
          select printf('job_backlog%09d', i), ?, ?, printf('msg_backlog%09d', i), ?, 1, 0, ?, null, ?, 'outbound' from seq`).run(ids.org, ids.app, ids.endpoint, now, now);
      })();
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`set search_path to ${schema}`);
    await client.query("begin");
    await client.query(
      `insert into messages (id, org_id, app_id, event_id, event_type, payload, channels, tags, created_at, deliver_at)
       select 'msg_backlog' || lpad(i::text, 9, '0'), $1, $2, null, 'invoice.paid', $3, null, null, $4, null from generate_series(0, $5 - 1) i`,
      [ids.org, ids.app, payload, now, n],
    );
    await client.query(
      `insert into jobs (id, org_id, scope_id, item_id, destination_id, attempt, trigger_type, run_at, locked_by, created_at, kind)
       select 'job_backlog' || lpad(i::text, 9, '0'), $1, $2, 'msg_backlog' || lpad(i::text, 9, '0'), $3, 1, 0, $4, null, $4, 'outbound' from generate_series(0, $5 - 1) i`,
      [ids.org, ids.app, ids.endpoint, now, n],
    );
    await client.query("commit");
    await client.query("analyze jobs");
  } finally {
    await client.end();
  }
}

async function orgOf(dialect: Dialect, dataDir: string, schema: string, appId: string): Promise<string> {
  if (dialect === "sqlite") {
    const db = new Database(join(dataDir, "hookwarden.db"), { readonly: true });
    try {
      return (db.prepare("select org_id from applications where id = ?").get(appId) as { org_id: string }).org_id;
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return (await client.query<{ org_id: string }>(`select org_id from ${schema}.applications where id = $1`, [appId])).rows[0]!.org_id;
  } finally {
    await client.end();
  }
}

export async function backlog(dialect: Dialect, receiver: ReceiverProcess): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), "hookwarden-bench-backlog-"));
  const schema = `hwbench_${randomBytes(6).toString("hex")}`;
  const secrets = gatewaySecrets();
  let gw: GatewayProcess | undefined;
  let client: GatewayClient | undefined;
  const cleanup = async () => {
    await client?.close();
    await gw?.stop(15_000);
    rmSync(dataDir, { recursive: true, force: true });
    if (dialect === "postgres") await dropSchema(schema);
  };
  await withCleanup(cleanup, async () => {
    const spawnOne = () => spawnGateway({ runtime: "dist", ...secrets, args: gatewayArgs(dialect, dataDir, schema) });
    gw = await spawnOne();
    client = new GatewayClient(gw.url, secrets.adminToken, 4);
    const app = await client.createApp("bench-backlog");
    const endpoint = await client.createEndpoint(app.id, `${receiver.url}/hook`);
    await client.close();
    client = undefined;
    await gw.stop(15_000);
    gw = undefined;

    log(`${dialect}: outage over; writing a backlog of ${BACKLOG} pending jobs`);
    const s0 = benchNow();
    await seed(dialect, dataDir, schema, { org: await orgOf(dialect, dataDir, schema, app.id), app: app.id, endpoint: endpoint.id }, BACKLOG);
    log(`${dialect}: backlog written in ${Math.round((benchNow() - s0) / 1000)} s; starting the gateway to drain it`);

    const done = (await receiver.track(BACKLOG, Math.max(600_000, BACKLOG * 5))).done;
    const t0 = benchNow();
    gw = await spawnOne();
    const pid = gw.pid;
    let peakRss = 0;
    const sampler = setInterval(() => {
      try {
        peakRss = Math.max(peakRss, memoryOf(pid).rssMb);
      } catch {
        /* exited */
      }
    }, 500);
    try {
      const result = await done;
      const elapsed = result.last - t0;
      emit({
        bench: "backlog_drained",
        dialect,
        value: Math.round((BACKLOG / elapsed) * 1000),
        unit: "deliveries/s",
        backlog_jobs: BACKLOG,
        drain_seconds: round(elapsed / 1000, 1),
        first_delivery_ms: round(result.first - t0, 0),
        peak_rss_mb: peakRss,
        gateway_cpu_ms_per_delivery: round(cpuMsOf(pid) / BACKLOG, 3),
        concurrency: CONCURRENCY,
        note: "time from starting the gateway (after the outage) to the last delivery at the receiver",
      });
    } finally {
      clearInterval(sampler);
    }
  });
}
