import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import type { Dialect } from "../../src/store/index.js";
import { TRANSPORTS, agentBucket, apiAt, bodyCounts, createAgentToken, postWebhook, spawnAgent, until, type AgentProcess } from "../helpers/agents.js";
import { closedPort } from "../helpers/delivery.js";
import { DIALECTS, TEST_PG_URL } from "../helpers/dialects.js";
import { gatewaySecrets, spawnGateway, type GatewayProcess } from "../helpers/gateway-process.js";
import { Receiver } from "../helpers/receiver.js";
import { dropTestStorage } from "../helpers/server.js";

const DURING_SERVER_KILL = 150;
/** Each stop comes once the internal service has this many more webhooks: deliveries are flowing. */
const KILL_AFTER = 25;

/** Rows the database holds, read while no gateway runs: committed requests and jobs still queued. */
async function rowCounts(dialect: Dialect, dataDir: string, schema: string | undefined): Promise<{ requests: number; jobs: number }> {
  if (dialect === "sqlite") {
    const db = new Database(join(dataDir, "hookwarden.db"));
    try {
      const n = (table: string) => (db.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n;
      return { requests: n("inbound_requests"), jobs: n("jobs") };
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: TEST_PG_URL });
  await client.connect();
  try {
    const n = async (table: string) => Number((await client.query<{ n: string }>(`select count(*) as n from ${schema}.${table}`)).rows[0]!.n);
    return { requests: await n("inbound_requests"), jobs: await n("jobs") };
  } finally {
    await client.end();
  }
}

for (const transport of TRANSPORTS) for (const dialect of DIALECTS) {
  describe(`server restarts under an agent (${dialect}, ${transport})`, () => {
    const agents: AgentProcess[] = [];
    const gateways: GatewayProcess[] = [];
    const receivers: Receiver[] = [];
    const storages: { dataDir: string; schema: string | undefined }[] = [];

    afterAll(async () => {
      await Promise.all([...agents.map((a) => a.stop()), ...gateways.map((g) => g.kill("SIGKILL"))]);
      await Promise.all(receivers.map((r) => r.stop()));
      for (const s of storages) await dropTestStorage(dialect, s.dataDir, s.schema);
    });

    const receiver = async () => {
      const r = await new Receiver().start();
      receivers.push(r);
      return r;
    };
    const agent = (...a: Parameters<typeof spawnAgent>) => {
      const p = spawnAgent(...a);
      agents.push(p);
      return p;
    };

    it(
      "restart the server (SIGTERM, then kill -9) while webhooks flow: the agent reconnects by itself and nothing is lost",
      async () => {
        const dataDir = mkdtempSync(join(tmpdir(), "hookwarden-agent-restart-"));
        const schema = dialect === "postgres" ? `hwa_${randomBytes(6).toString("hex")}` : undefined;
        storages.push({ dataDir, schema });
        const secrets = gatewaySecrets();
        const port = await closedPort();
        const grpcPort = await closedPort();
        // A short attempt timeout: a killed PostgreSQL node's leases (timeout + 10 s) expire in the test.
        const args = [
          "--host", "127.0.0.1", "--port", String(port), "--data-dir", dataDir,
          "--allow-private-networks", "127.0.0.0/8", "--request-timeout", "2s", "--log-level", "warn",
          ...(dialect === "postgres" ? ["--database-url", TEST_PG_URL, "--database-schema", schema!] : []),
          ...(transport === "grpc" ? ["--grpc-port", String(grpcPort)] : []),
        ];
        const g1 = await spawnGateway({ runtime: "tsx", startTimeoutMs: 90_000, args, ...secrets });
        gateways.push(g1);
        const url = g1.url;
        const api = apiAt(() => url, secrets.adminToken);
        const svc = await receiver();
        const { input } = await agentBucket(api, "internal");
        const token = await createAgentToken(api, { name: "dc-2", buckets: ["internal"] });
        const a = agent({ server: transport === "grpc" ? `grpc://127.0.0.1:${grpcPort}` : url, key: token.key, secret: token.secret, bucket: "internal", forwardTo: svc.url });
        await a.waitConnected();

        const bodies = Array.from({ length: DURING_SERVER_KILL }, (_, i) => JSON.stringify({ n: i, id: randomBytes(6).toString("hex") }));
        let next = 0;
        // A sender retries until it gets a 2xx, with an idempotency key so that a request the dead
        // server committed but never answered is not stored twice.
        const sender = async () => {
          while (next < bodies.length) {
            const i = next++;
            for (;;) {
              const res = await postWebhook(input.url, bodies[i]!, { "idempotency-key": `k${i}` }).catch(() => undefined);
              if (res?.status === 200) break;
              await new Promise((r) => setTimeout(r, 100));
            }
            await new Promise((r) => setTimeout(r, 25));
          }
        };
        const sending = Promise.all(Array.from({ length: 3 }, sender));
        /**
         * Stops the running server while deliveries flow and reads what it left: the webhooks the
         * internal service has (it answers at once, so whatever the server pushed is there) minus
         * those whose delivery the database recorded are the ones that may come again.
         */
        const stopAndCount = async (g: GatewayProcess, signal: NodeJS.Signals, afterMore: number) => {
          await svc.waitFor(svc.received.length + afterMore, 30_000);
          await g.kill(signal);
          // Frames the agent already held still reach the internal service after the kill: count
          // once its arrivals have stopped, or they would look like duplicates of nothing.
          let seen = -1;
          await until("the internal service to go quiet", () => {
            const quiet = svc.received.length === seen;
            seen = svc.received.length;
            return quiet;
          }, 10_000, 300);
          const { requests, jobs } = await rowCounts(dialect, dataDir, schema);
          return svc.received.length - (requests - jobs);
        };

        const unrecordedAtSigterm = await stopAndCount(g1, "SIGTERM", KILL_AFTER);
        const g2 = await spawnGateway({ runtime: "tsx", startTimeoutMs: 90_000, args: [...args, "--resend-window", "10m"], ...secrets });
        gateways.push(g2);
        await a.waitConnected(2);
        const unrecordedAtSigkill = await stopAndCount(g2, "SIGKILL", KILL_AFTER);
        const g3 = await spawnGateway({ runtime: "tsx", startTimeoutMs: 90_000, args, ...secrets });
        gateways.push(g3);
        // The agent comes back on its own schedule: after a slow restart its capped backoff (up to
        // 30 s; one run on one core waited 6.8 s between two attempts) may still be running, and the
        // jobs the killed node held can only drain once it is back. When every body was already at
        // the internal service, the 30 s queue wait alone had to cover that reconnect.
        await a.waitConnected(3);
        await sending;
        const missing = () => bodies.filter((b) => !svc.received.some((r) => r.body === b));
        await until(`every body at the internal service (${missing().length} missing)`, () => missing().length === 0, 60_000, 200);
        await until("the queue to empty", async () => (await queueDepth(url)) === 0, 30_000, 200).catch(async (err: Error) => {
          // What held the queue (attempt outcomes by error code) and what each process said.
          const metrics = (await (await fetch(`${url}/metrics`)).text()).split("\n").filter((l) => /^hookwarden_(queue_depth|forward_attempts_total)/.test(l));
          throw new Error([err.message, ...metrics, "--- agent ---", a.output().slice(-6000), "--- last gateway ---", g3.output().slice(-6000)].join("\n"));
        });

        const counts = bodyCounts(svc.received);
        const duplicates = [...counts.values()].reduce((s, n) => s + n - 1, 0);
        console.log(JSON.stringify({ test: "agent-server-restart", dialect, transport, posted: bodies.length, unrecordedAtSigterm, unrecordedAtSigkill, delivered: counts.size, duplicates, agentConnections: a.connections() }));
        expect(missing()).toEqual([]);
        // The same agent process reconnected by itself after each restart.
        expect(a.child.exitCode).toBe(null);
        expect(a.connections()).toBeGreaterThanOrEqual(3);
        // A graceful stop waits for the agent's acks: nothing it delivered is sent again.
        expect(unrecordedAtSigterm).toBe(0);
        // A crash repeats at most what was in flight: pushed to the agent (at most the per-output
        // concurrency, 32) or acknowledged but not yet committed by the recorder.
        expect(duplicates).toBeLessThanOrEqual(unrecordedAtSigkill);
      },
      400_000,
    );
  });
}

/** Jobs still queued, from the gateway's own gauge. */
async function queueDepth(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let total = 0;
  for (const m of text.matchAll(/^hookwarden_queue_depth\{state="[a-z]+"\} (\d+)/gm)) total += Number(m[1]);
  return total;
}
