import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GatewayClient } from "../test/helpers/gateway-client.js";
import { gatewaySecrets, spawnGateway, type GatewayProcess } from "../test/helpers/gateway-process.js";
import { CONCURRENCY, PG_URL, PROFILE, dropSchema, log, withCleanup, type Dialect } from "./common.js";

/** `serve` flags of every bench gateway: loopback receivers allowed, the bench's concurrency. */
export function gatewayArgs(dialect: Dialect, dataDir: string, schema: string): string[] {
  return [
    "--host", "127.0.0.1",
    "--port", "0",
    "--data-dir", dataDir,
    "--allow-private-networks", "127.0.0.0/8",
    "--log-level", "warn",
    // As many attempts in flight as the raw client. Both limits, because with the defaults
    // (128 per node, 32 per endpoint) a one-endpoint load leases up to 100 jobs per claim and
    // defers each one over the endpoint's limit by 250-500 ms with its own UPDATE (3,322
    // deferrals for 2,000 messages in one measured run): the figure would measure that churn.
    "--delivery-concurrency", String(CONCURRENCY),
    "--endpoint-concurrency", String(CONCURRENCY),
    "--shutdown-grace", "2s",
    ...(dialect === "postgres" ? ["--database-url", PG_URL, "--database-schema", schema] : []),
  ];
}

/**
 * Starts a built gateway (`node bin/hookwarden.js serve`) on a fresh data dir / schema, runs
 * `fn`, then stops and erases it, also when `fn` fails. With BENCH_PROFILE=1 the gateway writes
 * `$TMPDIR/hookwarden-profiles/{label}-{dialect}-{time}.cpuprofile`.
 */
export async function withGateway<T>(dialect: Dialect, label: string, fn: (gw: GatewayProcess, client: GatewayClient) => Promise<T>, extraArgs: readonly string[] = []): Promise<T> {
  const dataDir = mkdtempSync(join(tmpdir(), "hookwarden-bench-"));
  const schema = `hwbench_${randomBytes(6).toString("hex")}`;
  const secrets = gatewaySecrets();
  const profileDir = join(tmpdir(), "hookwarden-profiles");
  if (PROFILE) mkdirSync(profileDir, { recursive: true });
  let gw: GatewayProcess | undefined;
  let client: GatewayClient | undefined;
  const cleanup = async () => {
    await client?.close();
    await gw?.stop(15_000);
    rmSync(dataDir, { recursive: true, force: true });
    if (dialect === "postgres") await dropSchema(schema);
  };
  return withCleanup(cleanup, async () => {
    gw = await spawnGateway({
      runtime: "dist",
      ...secrets,
      nodeArgs: PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${label}-${dialect}-${Date.now()}.cpuprofile`] : [],
      // A phase's own settings, after the shared ones: the last value of a flag wins.
      args: [...gatewayArgs(dialect, dataDir, schema), ...extraArgs],
    });
    client = new GatewayClient(gw.url, secrets.adminToken, CONCURRENCY * 2);
    try {
      return await fn(gw, client);
    } catch (err) {
      const exit = gw.child.exitCode ?? gw.child.signalCode ?? "running";
      log(`${label}/${dialect} failed; gateway ${exit}; its last output:\n${gw.output().slice(-4_000)}`);
      throw err;
    }
  });
}
