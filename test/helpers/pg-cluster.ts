import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const BIN = "/usr/lib/postgresql/15/bin";

/**
 * A throwaway PostgreSQL 15 cluster for fault tests: its own data directory and port, run as user
 * `postgres`, trust authentication on 127.0.0.1. Tests stop and start it at will; the shared
 * server on 5432 is never touched. `destroy()` stops it (immediately) and removes its files.
 */
export interface PgCluster {
  readonly port: number;
  readonly dataDir: string;
  /** `postgres://postgres@127.0.0.1:PORT/postgres` */
  readonly url: string;
  start(): void;
  /** `immediate`: as if the server crashed (no checkpoint); `fast`: an orderly shutdown. */
  stop(mode?: "immediate" | "fast"): void;
  destroy(): void;
}

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function asPostgres(args: string[]): void {
  execFileSync("runuser", ["-u", "postgres", "--", ...args], { stdio: ["ignore", "ignore", "pipe"], timeout: 60_000 });
}

/**
 * `dataDir`: where the cluster lives (a tmpfs mount, to fill its disk); defaults to a new temp dir.
 * The directory must be empty or absent.
 */
export async function createPgCluster(opts: { dataDir?: string } = {}): Promise<PgCluster> {
  const root = opts.dataDir ?? mkdtempSync(join(tmpdir(), "hookwarden-pg-"));
  const dataDir = join(root, "data");
  chmodSync(root, 0o777);
  const port = await freePort();
  asPostgres([`${BIN}/initdb`, "-D", dataDir, "-A", "trust", "-U", "postgres", "--no-sync"]);
  const options = `-p ${port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50 -c shared_buffers=16MB`;
  const cluster: PgCluster = {
    port,
    dataDir,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start: () => asPostgres([`${BIN}/pg_ctl`, "-D", dataDir, "-o", options, "-w", "-l", join(dataDir, "server.log"), "start"]),
    stop: (mode = "immediate") => asPostgres([`${BIN}/pg_ctl`, "-D", dataDir, "-m", mode, "-w", "stop"]),
    destroy: () => {
      try {
        cluster.stop("immediate");
      } catch {
        /* not running */
      }
      if (opts.dataDir === undefined) rmSync(root, { recursive: true, force: true });
      else rmSync(dataDir, { recursive: true, force: true });
    },
  };
  cluster.start();
  return cluster;
}
