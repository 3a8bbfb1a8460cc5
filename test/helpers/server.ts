import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import pg from "pg";
import { Svix } from "svix";
import { createOrg, createToken } from "../../src/auth/tokens.js";
import type { Clock } from "../../src/clock/index.js";
import type { FunctionLimits } from "../../src/functions/runner.js";
import { loadConfig, type ConfigInput } from "../../src/config/index.js";
import { createLogger } from "../../src/logger/index.js";
import { startHookwarden, type Hookwarden } from "../../src/server/index.js";
import type { Dialect } from "../../src/store/index.js";
import { TEST_PG_URL } from "./dialects.js";

export interface TestServer {
  /** The running server; replaced by `restart()`. */
  hw: Hookwarden;
  url: string;
  token: string;
  svix: Svix;
  dialect: Dialect;
  dataDir: string;
  schema: string | undefined;
  /** Everything the server logged, as JSON lines. */
  logs: () => string;
  /** A second organisation's token, for isolation tests. */
  newOrgToken: (name: string) => Promise<string>;
  /** Raw fetch against the API with this server's token. */
  api: (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<{ status: number; body: any; text: string }>;
  /** Stops the server gracefully and starts a new one on the same storage and key. */
  restart: () => Promise<void>;
  stop: () => Promise<void>;
}

/**
 * `HOOKWARDEN_TEST_OPTIMISATIONS=off` runs every test server with the optimisations' off switches
 * thrown (group commit, direct hand-off, endpoint cache): `.ci/run` runs the suite once each way.
 */
export const OPTIMISATIONS_OFF = process.env.HOOKWARDEN_TEST_OPTIMISATIONS === "off";

/** The config every test server shares: loopback only, deliveries to 127.0.0.1 allowed. */
export function testConfigInput(dialect: Dialect, dataDir: string, schema: string | undefined): Partial<ConfigInput> {
  return {
    ...(OPTIMISATIONS_OFF ? { groupCommit: false, directHandOff: false, deliveryCache: false, preparedStatements: false } : {}),
    host: "127.0.0.1",
    port: 0,
    dataDir,
    masterKey: randomBytes(32).toString("base64"),
    adminToken: `hwk_test_${randomBytes(24).toString("base64url")}`,
    allowPrivateNetworks: ["127.0.0.0/8"],
    logLevel: "info",
    shutdownGrace: 2_000,
    ...(dialect === "postgres" ? { databaseUrl: TEST_PG_URL, databaseSchema: schema } : {}),
  };
}

export async function startTestServer(dialect: Dialect, overrides: Partial<ConfigInput> = {}, opts: { clock?: Clock; random?: () => number; functionLimits?: Partial<FunctionLimits> } = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), "hookwarden-test-"));
  const schema = dialect === "postgres" ? `hwt_${randomBytes(6).toString("hex")}` : undefined;
  const input = { ...testConfigInput(dialect, dataDir, schema), ...overrides };
  const config = loadConfig(input, {});
  const sink = new PassThrough();
  const lines: string[] = [];
  sink.on("data", (c: Buffer) => lines.push(c.toString("utf8")));
  const logger = createLogger({ level: config.logLevel, destination: sink });
  const start = () => startHookwarden(config, { logger, ...(opts.clock ? { clock: opts.clock } : {}), ...(opts.random ? { random: opts.random } : {}), ...(opts.functionLimits ? { functionLimits: opts.functionLimits } : {}) });
  const hw = await start();
  const token = String(input.adminToken);
  const api: TestServer["api"] = async (method, path, body, headers = {}) => {
    const res = await fetch(server.url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed, text };
  };
  let stopped = false;
  const server: TestServer = {
    hw,
    url: hw.url,
    token,
    svix: new Svix(token, { serverUrl: hw.url }),
    dialect,
    dataDir,
    schema,
    logs: () => lines.join(""),
    newOrgToken: async (name) => {
      const now = Date.now();
      const orgId = await createOrg(server.hw.ctx.store.db, name, now);
      return (await createToken(server.hw.ctx.store.db, orgId, "test", now)).reveal();
    },
    api,
    restart: async () => {
      await server.hw.stop();
      server.hw = await start();
      server.url = server.hw.url;
      server.svix = new Svix(token, { serverUrl: server.url });
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await server.hw.stop();
      await dropTestStorage(dialect, dataDir, schema);
    },
  };
  return server;
}

export async function dropTestStorage(dialect: Dialect, dataDir: string, schema: string | undefined): Promise<void> {
  rmSync(dataDir, { recursive: true, force: true });
  if (dialect === "postgres" && schema) {
    const client = new pg.Client({ connectionString: TEST_PG_URL });
    await client.connect();
    await client.query(`drop schema if exists ${schema} cascade`);
    await client.end();
  }
}
