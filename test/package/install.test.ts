import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentBucket, apiAt, createAgentToken, postWebhook, spawnAgent, until, type AgentProcess } from "../helpers/agents.js";
import { closedPort } from "../helpers/delivery.js";
import { DIALECTS, TEST_PG_URL } from "../helpers/dialects.js";
import { REPO_ROOT, gatewaySecrets, spawnGateway, type GatewayProcess } from "../helpers/gateway-process.js";
import { Receiver } from "../helpers/receiver.js";
import { dropTestStorage } from "../helpers/server.js";

/** The one install command the README and both Dockerfiles use (the tarball name varies by version). */
const INSTALL = ["install", "-g"];

function run(file: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeout?: number }): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: opts.cwd, env: opts.env ?? process.env, timeout: opts.timeout ?? 120_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/**
 * What a new user does: `npm pack` in a checkout, `npm install -g` of the tarball into a prefix of
 * their own, then `hookwarden serve` and `hookwarden agent` by name from a directory that has
 * nothing to do with the checkout.
 */
describe("the packed tarball, installed globally", () => {
  let work: string;
  let prefix: string;
  let elsewhere: string;
  let tarball: string;
  let packed: string[];
  let env: Record<string, string>;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "hookwarden-pkg-"));
    // A copy of the checkout, so the pack's build (prepack) never rewrites the dist/ other suites run.
    const checkout = join(work, "checkout");
    cpSync(REPO_ROOT, checkout, {
      recursive: true,
      filter: (src) => !["node_modules", ".git", "dist", ".hookwarden", "coverage"].includes(src === REPO_ROOT ? "" : (src.slice(REPO_ROOT.length).split("/").find(Boolean) ?? "")),
    });
    symlinkSync(join(REPO_ROOT, "node_modules"), join(checkout, "node_modules"));
    const pack = await run("npm", ["pack", "--json", "--pack-destination", work], { cwd: checkout, timeout: 300_000 });
    expect(pack.code, pack.stderr).toBe(0);
    const info = JSON.parse(pack.stdout.slice(pack.stdout.indexOf("["))) as { filename: string; files: { path: string }[] }[];
    tarball = join(work, info[0]!.filename);
    packed = info[0]!.files.map((f) => f.path);

    // better-sqlite3 compiles its native module at install (minutes of CPU here, where its
    // prebuilt binaries cannot be downloaded). prebuild-install takes a local prebuild instead:
    // the module already compiled in this checkout for this very Node (same ABI).
    const sqlite = join(REPO_ROOT, "node_modules/better-sqlite3");
    const version = (JSON.parse(readFileSync(join(sqlite, "package.json"), "utf8")) as { version: string }).version;
    const prebuilds = join(work, "prebuilds");
    mkdirSync(prebuilds);
    const archive = join(prebuilds, `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`);
    expect((await run("tar", ["-czf", archive, "-C", sqlite, "build/Release/better_sqlite3.node"], { cwd: work })).code).toBe(0);

    prefix = join(work, "prefix");
    elsewhere = join(work, "elsewhere");
    mkdirSync(elsewhere);
    env = { PATH: `${join(prefix, "bin")}:${dirname(process.execPath)}:${process.env.PATH ?? ""}` };
    const install = await run("npm", [...INSTALL, "--prefix", prefix, tarball, "--no-audit", "--no-fund", "--prefer-offline"], {
      cwd: elsewhere,
      env: { ...process.env, ...env, npm_config_better_sqlite3_local_prebuilds: prebuilds },
      timeout: 600_000,
    });
    expect(install.code, `${install.stdout}\n${install.stderr}`).toBe(0);
  }, 900_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  }, 120_000);

  it("holds the build, the bin script and the README: no sources, tests, maps or dev files", () => {
    expect(basename(tarball)).toMatch(/^hookwarden-\d+\.\d+\.\d+\.tgz$/);
    expect(packed).toContain("bin/hookwarden.js");
    expect(packed).toContain("dist/cli/main.js");
    expect(packed).toContain("dist/agents/client.js");
    // gRPC needs no generated code at run time (frame-codec.ts); the schema ships for other clients.
    expect(packed).toContain("dist/agents/grpc/agent.proto");
    expect(packed).toContain("dist/web/index.html");
    expect(packed).toContain("package.json");
    expect(packed).toContain("README.md");
    for (const f of packed) {
      expect(f).toMatch(/^(bin\/|dist\/|package\.json$|README\.md$)/);
      expect(f).not.toMatch(/\.test\.js$|\.map$|\.ts$/);
    }
  });

  it("puts `hookwarden` on PATH, with its help, from any directory", async () => {
    const help = await run("hookwarden", ["--help"], { cwd: elsewhere, env: { ...process.env, ...env } });
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/serve/);
    expect(help.stdout).toMatch(/agent/);
    expect(realpathSync(join(prefix, "bin/hookwarden"))).toBe(join(prefix, "lib/node_modules/hookwarden/bin/hookwarden.js"));
  });

  it("both Dockerfiles install the package the same way this test does", () => {
    for (const file of ["docker/gateway.Dockerfile", "docker/agent.Dockerfile"]) {
      const text = readFileSync(join(REPO_ROOT, file), "utf8");
      expect(text, file).toMatch(/^RUN npm install -g \/tmp\/hookwarden-\*\.tgz/m);
    }
  });

  for (const dialect of DIALECTS) {
    describe(`hookwarden serve + hookwarden agent, installed (${dialect})`, () => {
      let gateway: GatewayProcess | undefined;
      const agents: AgentProcess[] = [];
      let svc: Receiver | undefined;
      const schema = dialect === "postgres" ? `hwp_${randomBytes(6).toString("hex")}` : undefined;
      let dataDir = "";

      afterAll(async () => {
        await Promise.all(agents.map((a) => a.stop()));
        await gateway?.stop();
        await svc?.stop();
        if (dataDir) await dropTestStorage(dialect, dataDir, schema);
      });

      it("relays a webhook through the agent, which runs as the printed systemd unit says, and one through an agent over gRPC", async () => {
        const cwd = mkdtempSync(join(elsewhere, `${dialect}-`));
        dataDir = join(cwd, ".hookwarden");
        const secrets = gatewaySecrets();
        const port = await closedPort();
        const grpcPort = await closedPort();
        gateway = await spawnGateway({
          runtime: "dist",
          command: "hookwarden",
          cwd,
          env,
          ...secrets,
          // No --data-dir: SQLite lands in ./.hookwarden of the directory it was started from.
          args: ["--host", "127.0.0.1", "--port", String(port), "--allow-private-networks", "127.0.0.0/8", "--log-level", "warn", "--grpc-port", String(grpcPort), ...(dialect === "postgres" ? ["--database-url", TEST_PG_URL, "--database-schema", schema!] : [])],
          startTimeoutMs: 60_000,
        });
        if (dialect === "sqlite") expect(existsSync(join(dataDir, "hookwarden.db"))).toBe(true);
        // The console and the portal are served from the installed package's dist/web.
        for (const path of ["/console", "/portal"]) {
          const page = await fetch(`${gateway.url}${path}`);
          expect(page.status, path).toBe(200);
          expect(await page.text()).toContain('<div id="root">');
        }
        const api = apiAt(() => gateway!.url, secrets.adminToken);
        svc = await new Receiver().start();
        const { input } = await agentBucket(api, "orders");
        const token = await createAgentToken(api, { name: "installed", buckets: ["orders"] });

        // `hookwarden agent --check`, by name, as the README says to before installing the unit.
        const check = await run("hookwarden", ["agent", "--check", "--server", gateway.url, "--key", token.key, "--bucket", "orders", "--forward-to", svc.url], {
          cwd,
          env: { ...process.env, ...env, HOOKWARDEN_AGENT_SECRET: token.secret },
        });
        expect(check.code, check.stderr).toBe(0);
        expect(check.stdout).toMatch(/OK: .* accepted key/);

        // The unit's ExecStart, run as systemd would (its --config swapped for this test's file).
        const unit = await run("hookwarden", ["agent", "--print-systemd-unit"], { cwd, env: { ...process.env, ...env } });
        expect(unit.code, unit.stderr).toBe(0);
        const [node, bin, ...rest] = /^ExecStart=(.+)$/m.exec(unit.stdout)![1]!.split(" ");
        expect(node).toBe(process.execPath);
        expect(bin).toBe(join(prefix, "lib/node_modules/hookwarden/bin/hookwarden.js"));
        expect(rest).toEqual(["agent", "--config", "/etc/hookwarden/agent.json"]);
        const agent = spawnAgent({ command: node!, commandArgs: [bin!], cwd: "/", dir: cwd, server: gateway.url, key: token.key, secret: token.secret, routes: [{ bucket: "orders", forwardTo: `${svc.url}/hooks` }] });
        agents.push(agent);
        await agent.waitConnected(1, 60_000);

        const body = JSON.stringify({ installed: dialect });
        expect((await postWebhook(input.url, body)).status).toBe(200);
        await until("the webhook at the internal service", () => svc!.received.find((r) => r.body === body), 30_000);
        expect(svc.received.find((r) => r.body === body)!.url).toBe("/hooks");

        // The same installation over gRPC: `hookwarden agent` by name, on the gateway's --grpc-port.
        const grpc = await agentBucket(api, "orders-grpc");
        const grpcToken = await createAgentToken(api, { name: "installed-grpc", buckets: ["orders-grpc"] });
        const grpcServer = `grpc://127.0.0.1:${grpcPort}`;
        const grpcCheck = await run("hookwarden", ["agent", "--check", "--server", grpcServer, "--key", grpcToken.key, "--bucket", "orders-grpc", "--forward-to", svc.url], {
          cwd,
          env: { ...process.env, ...env, HOOKWARDEN_AGENT_SECRET: grpcToken.secret },
        });
        expect(grpcCheck.code, grpcCheck.stderr).toBe(0);
        expect(grpcCheck.stdout).toMatch(/OK: .* accepted key/);
        const grpcAgent = spawnAgent({ command: "hookwarden", cwd, env, server: grpcServer, key: grpcToken.key, secret: grpcToken.secret, bucket: "orders-grpc", forwardTo: `${svc.url}/grpc` });
        agents.push(grpcAgent);
        await grpcAgent.waitConnected(1, 60_000);
        const grpcBody = JSON.stringify({ installed: dialect, transport: "grpc" });
        expect((await postWebhook(grpc.input.url, grpcBody)).status).toBe(200);
        await until("the gRPC-relayed webhook at the internal service", () => svc!.received.find((r) => r.body === grpcBody), 30_000);
        expect(svc.received.find((r) => r.body === grpcBody)!.url).toBe("/grpc");
      }, 180_000);
    });
  }
});
