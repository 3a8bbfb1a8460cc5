import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";

/** The repository root, whatever the caller's working directory. */
export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface GatewayProcess {
  readonly pid: number;
  /** `http://127.0.0.1:PORT` as announced by the server. */
  readonly url: string;
  readonly child: ChildProcess;
  /** Resolves when the process has exited, with its exit code or the signal that ended it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The last 64 KB the process wrote to stdout and stderr, for failure messages. */
  output(): string;
  /** Sends `signal` (SIGKILL for a crash) and waits for the exit. */
  kill(signal: NodeJS.Signals): Promise<void>;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. Safe to call twice. */
  stop(graceMs?: number): Promise<void>;
}

export interface GatewaySpawnOptions {
  /** `tsx` runs src/ directly; `dist` runs the build (`node bin/hookwarden.js`), as in production. */
  runtime: "tsx" | "dist";
  /** Flags after `serve`, e.g. `["--data-dir", dir, "--port", "0"]`. */
  args: string[];
  adminToken: string;
  /** Omitted: key-file mode (the server generates or reads `master.key` in its data dir). */
  masterKey?: string;
  /** More environment, e.g. `HOOKWARDEN_MASTER_KEY_PREVIOUS`. */
  env?: Record<string, string>;
  /** Every chunk the process writes to stdout or stderr, from the first byte (`output()` keeps only a tail). */
  onOutput?: (text: string, stream: "stdout" | "stderr") => void;
  /** Extra node flags, e.g. `--cpu-prof`. */
  nodeArgs?: string[];
  /**
   * An installed `hookwarden` executable (a name looked up on `env.PATH`, or a path) run instead
   * of node + `runtime`, from `cwd`; the exit-with-parent hook then travels in NODE_OPTIONS.
   */
  command?: string;
  /** Working directory (default: the repository root). */
  cwd?: string;
  /** Waits this long for the "listening" line. */
  startTimeoutMs?: number;
}

/**
 * Preloaded into every gateway: when the parent dies, even by SIGKILL (a test runner killing its
 * worker on timeout skips every exit hook), the kernel closes the parent's end of the child's
 * stdin, and the child kills itself instead of serving on as an orphan.
 */
const EXIT_WITH_PARENT = `data:text/javascript,${encodeURIComponent(
  'process.stdin.on("end", () => process.kill(process.pid, "SIGKILL")).on("error", () => {}).resume(); process.stdin.unref();',
)}`;

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** A test or bench that dies must not leave servers behind. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const child of live) child.kill("SIGKILL");
  });
}

/** A fresh admin token and master key for one gateway installation (reuse them across restarts). */
export function gatewaySecrets(): { adminToken: string; masterKey: string } {
  return { adminToken: `hwk_test_${randomBytes(24).toString("base64url")}`, masterKey: randomBytes(32).toString("base64") };
}

/**
 * Starts `hookwarden serve` as a real child process (its own pid, so `kill -9` is a real crash)
 * and resolves once it announces its URL. The environment carries no other HOOKWARDEN_* variable
 * than the admin token and master key, so a developer's shell cannot change what is tested.
 */
export function spawnGateway(opts: GatewaySpawnOptions): Promise<GatewayProcess> {
  installExitHook();
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("HOOKWARDEN_")) env[k] = v;
  env.HOOKWARDEN_ADMIN_TOKEN = opts.adminToken;
  if (opts.masterKey !== undefined) env.HOOKWARDEN_MASTER_KEY = opts.masterKey;
  Object.assign(env, opts.env);
  const entry = opts.runtime === "tsx" ? ["--import", "tsx", "src/cli/main.ts"] : ["bin/hookwarden.js"];
  if (opts.command) env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ""} --import ${EXIT_WITH_PARENT}`.trim();
  const [file, argv] = opts.command
    ? [opts.command, ["serve", ...opts.args]]
    : [process.execPath, ["--import", EXIT_WITH_PARENT, ...(opts.nodeArgs ?? []), ...entry, "serve", ...opts.args]];
  const child = spawn(file, argv, {
    cwd: opts.cwd ?? REPO_ROOT,
    env,
    // stdin is a pipe this process holds open until it dies: see EXIT_WITH_PARENT.
    stdio: ["pipe", "pipe", "pipe"],
  });
  live.add(child);
  let tail = "";
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString("utf8")).slice(-65_536);
  };
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  const kill = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  const stop = async (graceMs = 10_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  };
  child.stdout!.on("data", keep);
  if (opts.onOutput) {
    const onOutput = opts.onOutput;
    child.stdout!.on("data", (c: Buffer) => onOutput(c.toString("utf8"), "stdout"));
    child.stderr!.on("data", (c: Buffer) => onOutput(c.toString("utf8"), "stderr"));
  }

  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void kill("SIGKILL").then(() => reject(new Error(`${why}\n--- gateway output ---\n${tail}`)));
    };
    const timer = setTimeout(() => fail("the gateway did not start in time"), opts.startTimeoutMs ?? 30_000);
    child.once("error", (err) => fail(`could not spawn the gateway: ${err.message}`));
    void exited.then(({ code, signal }) => fail(`the gateway exited during start (code ${code}, signal ${signal})`));
    child.stderr!.on("data", (chunk: Buffer) => {
      keep(chunk);
      const m = /Hookwarden is listening on (http:\/\/\S+)/.exec(tail);
      if (!m || settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ pid: child.pid!, url: m[1]!, child, exited, output: () => tail, kill, stop });
    });
  });
}
