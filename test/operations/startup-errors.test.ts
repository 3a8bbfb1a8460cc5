import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import { closedPort } from "../helpers/delivery.js";
import { gatewaySecrets, spawnGateway, type GatewayProcess } from "../helpers/gateway-process.js";

/** A failed start: exit code 1 and exactly one line on stderr, starting "hookwarden: ", no stack. */
function oneLine(r: { code: number | null; stderr: string; stdout: string }): string {
  expect(r.code, r.stderr).toBe(1);
  const lines = r.stderr.split("\n").filter(Boolean);
  expect(lines, r.stderr).toHaveLength(1);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(lines[0]).toMatch(/^hookwarden: /);
  return lines[0]!;
}

// Each case spawns the real CLI (tsx compiles src/ on every start: seconds each under load).
describe("start-up errors are one line with the cause and the fix", { timeout: 90_000 }, () => {
  const dirs: string[] = [];
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), "hookwarden-start-"));
    dirs.push(d);
    return d;
  };
  let running: GatewayProcess | undefined;
  let blocker: Server | undefined;
  afterAll(async () => {
    await running?.stop();
    await new Promise<void>((r) => (blocker ? blocker.close(() => r()) : r()));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  let port = 0;
  beforeAll(async () => {
    blocker = createServer();
    await new Promise<void>((r) => blocker!.listen(0, "127.0.0.1", r));
    port = (blocker.address() as { port: number }).port;
  });

  it("port in use", async () => {
    const { adminToken, masterKey } = gatewaySecrets();
    const line = oneLine(await runCli(["serve", "--data-dir", dir(), "--port", String(port)], { HOOKWARDEN_ADMIN_TOKEN: adminToken, HOOKWARDEN_MASTER_KEY: masterKey }));
    expect(line).toBe(`hookwarden: port ${port} on 127.0.0.1 is already in use (another hookwarden or another program listens there): stop it, or start with --port <another port>`);
  });

  it("gRPC port in use", async () => {
    const { adminToken, masterKey } = gatewaySecrets();
    const d = dir();
    const line = oneLine(await runCli(["serve", "--data-dir", d, "--port", "0", "--grpc-port", String(port)], { HOOKWARDEN_ADMIN_TOKEN: adminToken, HOOKWARDEN_MASTER_KEY: masterKey }));
    expect(line).toBe(`hookwarden: gRPC port ${port} on 127.0.0.1 is already in use (another hookwarden or another program listens there): stop it, or start with --grpc-port <another port>`);
    // The failed start left nothing behind: the same data dir starts once the port is free.
    const grpcPort = await closedPort();
    running = await spawnGateway({ runtime: "tsx", args: ["--data-dir", d, "--port", "0", "--grpc-port", String(grpcPort)], adminToken, masterKey });
    await running.stop();
    running = undefined;
  });

  it("PostgreSQL unreachable, without the URL's password", async () => {
    const pgPort = await closedPort();
    const { masterKey } = gatewaySecrets();
    const line = oneLine(await runCli(["serve", "--port", "0", "--database-url", `postgres://hw:pa55-canary@127.0.0.1:${pgPort}/hookwarden`], { HOOKWARDEN_MASTER_KEY: masterKey }));
    expect(line).toBe(`hookwarden: cannot reach PostgreSQL at 127.0.0.1:${pgPort}/hookwarden (ECONNREFUSED): start PostgreSQL or fix --database-url / HOOKWARDEN_DATABASE_URL`);
    expect(line).not.toContain("pa55-canary");
  });

  it("bad master key", async () => {
    const line = oneLine(await runCli(["serve", "--data-dir", dir(), "--port", "0"], { HOOKWARDEN_MASTER_KEY: "not-a-key" }));
    expect(line).toMatch(/^hookwarden: HOOKWARDEN_MASTER_KEY must be the base64 encoding of 32 bytes; set it to the key this installation was started with, or for a new one to `node -e/);
  });

  it("data dir locked by a running server, and HOOKWARDEN_ADMIN_TOKEN for an initialised data dir; the banner names the organisation", async () => {
    const d = dir();
    const secrets = gatewaySecrets();
    let banner = "";
    running = await spawnGateway({ runtime: "tsx", args: ["--data-dir", d, "--port", "0"], ...secrets, onOutput: (text, stream) => void (stream === "stderr" && (banner += text)) });
    expect(banner).toContain('Another API token: hookwarden token create --org default --name NAME');

    const locked = oneLine(await runCli(["serve", "--data-dir", d, "--port", "0"], { HOOKWARDEN_ADMIN_TOKEN: secrets.adminToken, HOOKWARDEN_MASTER_KEY: secrets.masterKey }));
    expect(locked).toBe(`hookwarden: Another hookwarden (pid ${running.pid}) is serving ${d}; stop it or use another --data-dir`);
    await running.stop();
    running = undefined;

    const other = gatewaySecrets().adminToken;
    const ignored = oneLine(await runCli(["serve", "--data-dir", d, "--port", "0"], { HOOKWARDEN_ADMIN_TOKEN: other, HOOKWARDEN_MASTER_KEY: secrets.masterKey }));
    expect(ignored).toBe(
      "hookwarden: HOOKWARDEN_ADMIN_TOKEN is only used on the first start, and this installation is already initialised without that token; unset it and create a token with: hookwarden token create --org default --name NAME",
    );
    expect(ignored).not.toContain(other);

    // Its own token again (the same environment restarting) is fine.
    running = await spawnGateway({ runtime: "tsx", args: ["--data-dir", d, "--port", "0"], ...secrets });
    const res = await fetch(`${running.url}/api/v1/app`, { headers: { authorization: `Bearer ${secrets.adminToken}` } });
    expect(res.status).toBe(200);
  }, 180_000);
});
