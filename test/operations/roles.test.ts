import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiAt, until } from "../helpers/agents.js";
import { runCli } from "../helpers/cli.js";
import { TEST_PG_URL } from "../helpers/dialects.js";
import { gatewaySecrets, spawnGateway, type GatewayProcess } from "../helpers/gateway-process.js";
import { Receiver } from "../helpers/receiver.js";

/** Attempts one node made, from its own /metrics. */
async function attemptsMadeBy(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^hookwarden_delivery_attempts_total\{[^}]*\} (\d+)/gm)) n += Number(m[1]);
  return n;
}

describe("--role on embedded SQLite", () => {
  it("refuses api and worker with one line saying why and what to do", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hookwarden-role-"));
    try {
      for (const role of ["api", "worker"]) {
        const r = await runCli(["serve", "--role", role, "--data-dir", dir, "--port", "0"]);
        expect(r.code).toBe(1);
        const lines = r.stderr.trim().split("\n");
        expect(lines, r.stderr).toHaveLength(1);
        expect(lines[0]).toMatch(new RegExp(`^hookwarden: --role ${role} needs PostgreSQL .*use --role all`));
      }
      const bad = await runCli(["serve", "--role", "both", "--data-dir", dir, "--port", "0"]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/Allowed choices are all, api, worker/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

/**
 * One API node and two worker nodes, real processes on one PostgreSQL schema, as three machines
 * would run. The API node runs no worker, so every job travels through the queue and NOTIFY.
 */
describe("one API node and two worker nodes on PostgreSQL", () => {
  const schema = `hwt_${randomBytes(6).toString("hex")}`;
  const secrets = gatewaySecrets();
  const dataDir = mkdtempSync(join(tmpdir(), "hookwarden-roles-"));
  let api: GatewayProcess;
  let workers: GatewayProcess[] = [];
  let receiver: Receiver;

  const node = (role: string) =>
    spawnGateway({
      runtime: "tsx",
      adminToken: secrets.adminToken,
      masterKey: secrets.masterKey,
      startTimeoutMs: 60_000,
      args: [
        ...["--role", role, "--database-url", TEST_PG_URL, "--database-schema", schema, "--data-dir", dataDir],
        ...["--host", "127.0.0.1", "--port", "0", "--allow-private-networks", "127.0.0.0/8", "--log-level", "warn"],
        // A lease is the attempt timeout + 10 s: a killed worker's jobs are due again 12 s later.
        ...["--request-timeout", "2s", "--delivery-concurrency", "8", "--poll-interval", "200ms", "--retry-schedule", "1s,1s,1s"],
      ],
    });

  beforeAll(async () => {
    receiver = await new Receiver().start();
    api = await node("api");
    workers = await Promise.all([node("worker"), node("worker")]);
  }, 180_000);
  afterAll(async () => {
    await Promise.all([api, ...workers].map((n) => n?.stop()));
    await receiver?.stop();
    const client = new pg.Client({ connectionString: TEST_PG_URL });
    await client.connect();
    await client.query(`drop schema if exists ${schema} cascade`);
    await client.end();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("a worker's port answers health, readiness and metrics only; the API node serves the API", async () => {
    for (const w of workers) {
      expect((await fetch(`${w.url}/health`)).status).toBe(200);
      expect((await fetch(`${w.url}/ready`)).status).toBe(200);
      expect((await fetch(`${w.url}/metrics`)).status).toBe(200);
      expect((await fetch(`${w.url}/api/v1/app`, { headers: { authorization: `Bearer ${secrets.adminToken}` } })).status).toBe(404);
      expect((await fetch(`${w.url}/in/inp_whatever`, { method: "POST", body: "{}" })).status).toBe(404);
    }
    expect((await apiAt(() => api.url, secrets.adminToken)("GET", "/api/v1/app")).status).toBe(200);
    expect(api.output() + workers.map((w) => w.output()).join("")).not.toMatch(/"level":(50|60)/);
  });

  it("delivers every message published to the API node, and loses none when a worker node is SIGKILLed mid-stream", async () => {
    const call = apiAt(() => api.url, secrets.adminToken);
    const app = (await call("POST", "/api/v1/app", { name: "split" })).body.id as string;
    expect((await call("POST", `/api/v1/app/${app}/endpoint`, { url: `${receiver.url}/split` })).status).toBe(201);
    // Slow answers keep deliveries in flight on both workers when one is killed.
    receiver.respond = () => ({ status: 200, body: "ok", delayMs: 100 });
    const N = 300;
    const published = new Set<string>();
    for (let i = 0; i < N; i += 25) {
      const batch = await Promise.all(Array.from({ length: Math.min(25, N - i) }, (_, k) => call("POST", `/api/v1/app/${app}/msg`, { eventType: "e", payload: { i: i + k } })));
      for (const r of batch) {
        expect(r.status, r.text).toBe(202);
        published.add(r.body.id as string);
      }
    }
    const received = () => receiver.received.filter((r) => r.url === "/split");
    await until("a fifth delivered", () => received().length >= N / 5, 60_000);
    const victim = workers[0]!;
    const madeByVictim = await attemptsMadeBy(victim.url);
    await victim.kill("SIGKILL");
    // What the killed node may have sent without recording: its leases, frozen from now on. (The
    // survivor's leases are counted too, so this bounds the duplicates from above.)
    const client = new pg.Client({ connectionString: TEST_PG_URL });
    await client.connect();
    const leased = Number((await client.query(`select count(*)::int as n from ${schema}.jobs where locked_by is not null`)).rows[0].n);
    await client.end();

    await until("every message delivered at least once", () => new Set(received().map((r) => String(r.headers["webhook-id"]))).size >= N, 120_000, 200);
    // Let late duplicates (if any) arrive before counting them.
    await until("the queue drained", async () => {
      const c = new pg.Client({ connectionString: TEST_PG_URL });
      await c.connect();
      const n = Number((await c.query(`select count(*)::int as n from ${schema}.jobs`)).rows[0].n);
      await c.end();
      return n === 0;
    }, 60_000, 250);
    const ids = received().map((r) => String(r.headers["webhook-id"]));
    expect(new Set(ids)).toEqual(published);
    const duplicates = ids.length - N;
    console.log(JSON.stringify({ figure: "roles.sigkill", messages: N, duplicates, leasedAtKill: leased, attemptsByKilledWorkerBeforeKill: madeByVictim }));
    expect(duplicates).toBeGreaterThanOrEqual(0);
    expect(duplicates).toBeLessThanOrEqual(leased);
    // The API node made no attempt; the killed worker had made some before it died, the survivor the rest.
    expect(await attemptsMadeBy(api.url)).toBe(0);
    expect(madeByVictim).toBeGreaterThan(0);
    expect(await attemptsMadeBy(workers[1]!.url)).toBeGreaterThan(0);
  }, 240_000);

  it("forwards an ephemeral bucket's request from the API node that holds it: no worker node can, or tries", async () => {
    const call = apiAt(() => api.url, secrets.adminToken);
    const bucket = (await call("POST", "/api/v1/bucket", { name: "eph-split", ephemeral: true })).body.id as string;
    const input = (await call("POST", `/api/v1/bucket/${bucket}/input`, { name: "in" })).body.id as string;
    expect((await call("POST", `/api/v1/bucket/${bucket}/output`, { url: `${receiver.url}/eph-split` })).status).toBe(201);
    const forwardsBy = async (url: string) => {
      const text = await (await fetch(`${url}/metrics`)).text();
      let n = 0;
      for (const m of text.matchAll(/^hookwarden_forward_attempts_total\{[^}]*\} (\d+)/gm)) n += Number(m[1]);
      return n;
    };
    for (let i = 0; i < 5; i++) expect((await fetch(`${api.url}/in/${input}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ i }) })).status).toBe(200);
    const received = () => receiver.received.filter((r) => r.url === "/eph-split");
    await until("the five forwarded", () => received().length >= 5, 30_000);
    expect(received().map((r) => JSON.parse(r.body.toString()).i).sort()).toEqual([0, 1, 2, 3, 4]);
    // Counted once the answer is in (the receiver may still be holding the last ones back).
    await until("the API node counted its five forwards", async () => (await forwardsBy(api.url)) === 5, 30_000);
    for (const w of workers.slice(1)) expect(await forwardsBy(w.url)).toBe(0);
    const requests = (await call("GET", `/api/v1/bucket/${bucket}/request`)).body.data as { id: string }[];
    for (const r of requests) {
      const shown = (await call("GET", `/api/v1/bucket/${bucket}/request/${r.id}`)).body;
      expect(shown.request).toBeNull();
      expect(shown.attempts.map((a: { errorCode: string | null }) => a.errorCode)).toEqual([null]);
    }
  }, 120_000);
});
