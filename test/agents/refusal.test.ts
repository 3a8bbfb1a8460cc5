import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { AgentClient } from "../../src/agents/client.js";
import { AGENT_EXIT } from "../../src/agents/exit.js";
import { createLogger } from "../../src/logger/index.js";
import { SecretValue } from "../../src/vault/secret-value.js";
import { agentServer, transportConfig, TRANSPORTS, FreezableProxy, agentBucket, agentUrl, createAgentToken, rawAgent, spawnAgent, until, type AgentProcess, type AgentToken } from "../helpers/agents.js";
import { closedPort } from "../helpers/delivery.js";
import { DIALECTS } from "../helpers/dialects.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/** A hostile answer: terminal escapes, a forged log line, and far more than the agent reads. */
const HOSTILE_BODY = `\u001b[2J\u001b]0;pwned\u0007\n{"level":50,"msg":"forged"}\r\n${"x".repeat(100_000)}`;

/**
 * A gateway stand-in whose answer to each upgrade is scripted: an HTTP status (with a body), or
 * "accept" (a hello frame, then the connection is dropped once the test says so).
 */
class ScriptedGateway {
  url = "";
  attempts = 0;
  readonly #server: Server;
  readonly #wss = new WebSocketServer({ noServer: true });
  readonly #script: (number | "accept")[];

  constructor(script: (number | "accept")[]) {
    this.#script = script;
    this.#server = createServer();
    this.#server.on("upgrade", (req, socket, head) => {
      const step = this.#script[this.attempts++] ?? 503;
      if (step === "accept") {
        this.#wss.handleUpgrade(req, socket, head, (ws) => {
          ws.send(JSON.stringify({ type: "hello", agentId: "a1", name: "stub", mode: "forward", buckets: [{ id: "bkt_1", name: "orders" }], heartbeatMs: 60_000 }));
          // The connection is dropped at once: a transient failure after a success.
          setImmediate(() => ws.terminate());
        });
        return;
      }
      const body = step === 418 ? HOSTILE_BODY : JSON.stringify({ code: step === 401 ? "E_UNAUTHORIZED" : step === 403 ? "E_FORBIDDEN" : "E_UNAVAILABLE", detail: `scripted ${step}` });
      socket.end(`HTTP/1.1 ${step} Scripted\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

function capturedLogger(): { logger: ReturnType<typeof createLogger>; lines: () => any[] } {
  const sink = new PassThrough();
  let text = "";
  sink.on("data", (c: Buffer) => (text += c.toString("utf8")));
  return { logger: createLogger({ level: "info", destination: sink }), lines: () => text.split("\n").filter(Boolean).map((l) => JSON.parse(l)) };
}

describe("agent reconnect policy (scripted gateway)", () => {
  const MIN = 20;
  const MAX = 80;

  it("retries transient failures with capped exponential backoff, resets after a connection, and stops at a refusal", async () => {
    // Six 503s (the delays must reach the cap), a connection that drops, two 502s, then 403.
    const gw = await new ScriptedGateway([503, 503, 503, 503, 503, 503, "accept", 502, 502, 403]).start();
    const { logger, lines } = capturedLogger();
    const client = new AgentClient({ server: gw.url, key: "ak_x", secret: new SecretValue("as_x"), routes: [{ bucket: "orders", forwardTo: "http://127.0.0.1:9/" }], logger, reconnectMinMs: MIN, reconnectMaxMs: MAX });
    try {
      client.start();
      const end = await client.done;
      expect(end.kind).toBe("refused");
      if (end.kind !== "refused") return;
      expect(end.error.exitCode).toBe(AGENT_EXIT.forbidden);
      expect(end.error.message).toMatch(/refused the buckets orders .*403: scripted 403/);
      expect(gw.attempts).toBe(10);

      const retries = lines().filter((l) => l.msg === "agent disconnected; reconnecting").map((l) => l.retryInMs as number);
      expect(retries).toHaveLength(9);
      // Attempt k waits min(MAX, MIN * 2^k) scaled by a jitter in [0.5, 1].
      const bound = (k: number) => Math.min(MAX, MIN * 2 ** k);
      const expected = [0, 1, 2, 3, 4, 5, /* reset by the connection: */ 0, 1, 2];
      retries.forEach((ms, i) => {
        expect(ms, `retry ${i}`).toBeLessThanOrEqual(bound(expected[i]!));
        expect(ms, `retry ${i}`).toBeGreaterThanOrEqual(Math.floor(bound(expected[i]!) / 2));
      });
      expect(lines().filter((l) => l.msg === "agent connected")).toHaveLength(1);
      // A refusal is logged once, as an error, and nothing more is attempted.
      expect(lines().filter((l) => l.level === 50)).toHaveLength(1);
      await new Promise((r) => setTimeout(r, MAX * 5));
      expect(gw.attempts).toBe(10);
    } finally {
      await client.stop();
      await gw.stop();
    }
  });

  it("keeps a hostile server's refusal text on one bounded line, without control characters", async () => {
    const gw = await new ScriptedGateway([418, 401]).start();
    const { logger, lines } = capturedLogger();
    const client = new AgentClient({ server: gw.url, key: "ak_x", secret: new SecretValue("as_x"), routes: [{ bucket: "orders", forwardTo: "http://127.0.0.1:9/" }], logger, reconnectMinMs: MIN, reconnectMaxMs: MAX });
    try {
      client.start();
      expect((await client.done).kind).toBe("refused");
      const refused = lines().find((l) => l.msg === "the server refused the agent connection; will retry");
      expect(refused.status).toBe(418);
      expect(refused.reason.length).toBeLessThanOrEqual(300);
      expect(refused.reason).not.toMatch(/[\u0000-\u001f\u007f]/);
      expect(refused.reason).toContain('{"level":50,"msg":"forged"}');
    } finally {
      await client.stop();
      await gw.stop();
    }
  });

  it("stops at a 401 with the unauthorized code, the first time", async () => {
    const gw = await new ScriptedGateway([401]).start();
    const { logger } = capturedLogger();
    const client = new AgentClient({ server: gw.url, key: "ak_x", secret: new SecretValue("as_x"), routes: [{ bucket: "orders", forwardTo: "http://127.0.0.1:9/" }], logger, reconnectMinMs: MIN, reconnectMaxMs: MAX });
    try {
      client.start();
      const end = await client.done;
      expect(end.kind === "refused" && end.error.exitCode).toBe(AGENT_EXIT.unauthorized);
      await new Promise((r) => setTimeout(r, MAX * 5));
      expect(gw.attempts).toBe(1);
    } finally {
      await client.stop();
      await gw.stop();
    }
  });
});

for (const transport of TRANSPORTS) for (const dialect of DIALECTS) {
  describe(`hookwarden agent: permanent refusals and --check (${dialect}, ${transport})`, () => {
    let t: TestServer;
    let svc: Receiver;
    let token: AgentToken;
    const scheme = transport === "grpc" ? "grpc" : "http";
    const agents: AgentProcess[] = [];
    const agent = (opts: Parameters<typeof spawnAgent>[0]) => {
      const p = spawnAgent(opts);
      agents.push(p);
      return p;
    };

    beforeAll(async () => {
      t = await startTestServer(dialect, transportConfig(transport));
      svc = await new Receiver().start();
      await agentBucket(t.api, "orders");
      await agentBucket(t.api, "other");
      token = await createAgentToken(t.api, { name: "edge", buckets: ["orders"], mode: "forward" });
    }, 60_000);

    afterAll(async () => {
      await Promise.all(agents.map((a) => a.stop()));
      await svc?.stop();
      await t?.stop();
    });

    it("a wrong secret stops the agent with exit code 3 and one clear line, instead of retrying forever", async () => {
      const a = agent({ server: agentServer(t.hw, transport), key: token.key, secret: `${token.secret.slice(0, -2)}xx`, bucket: "orders", forwardTo: svc.url });
      const { code } = await a.exited;
      expect(code).toBe(AGENT_EXIT.unauthorized);
      expect(a.output()).toMatch(/^hookwarden: the server refused this agent's key or secret \(401\)/m);
      expect(a.output()).not.toMatch(/^\s+at /m);
      expect(a.output()).not.toContain(token.secret.slice(3, -2));
      expect(a.output()).not.toMatch(/reconnecting/);
    }, 120_000);

    it("a bucket outside the token, or one that does not exist, stops it with exit code 4", async () => {
      const buckets = ["other", "no-such-bucket"];
      const runs = buckets.map((bucket) => agent({ server: agentServer(t.hw, transport), key: token.key, secret: token.secret, bucket, forwardTo: svc.url }));
      for (const [i, a] of runs.entries()) {
        const { code } = await a.exited;
        expect(code, buckets[i]).toBe(AGENT_EXIT.forbidden);
        expect(a.output(), buckets[i]).toMatch(new RegExp(`^hookwarden: the server refused the buckets ${buckets[i]} for this agent token \\(403`, "m"));
      }
    }, 120_000);

    it("a revoked token stops a connected agent (4001, then 401 on the reconnect)", async () => {
      const spare = await createAgentToken(t.api, { name: "spare", buckets: ["orders"] });
      const a = agent({ server: agentServer(t.hw, transport), key: spare.key, secret: spare.secret, bucket: "orders", forwardTo: svc.url });
      await a.waitConnected();
      expect((await t.api("DELETE", `/api/v1/agent-token/${spare.id}`)).status).toBe(204);
      expect((await a.exited).code).toBe(AGENT_EXIT.unauthorized);
    }, 120_000);

    it("--check validates the configuration and credentials once, and exits 0", async () => {
      const a = agent({ server: agentServer(t.hw, transport), key: token.key, secret: token.secret, bucket: "orders", forwardTo: `${svc.url}/hooks`, args: ["--check"] });
      expect((await a.exited).code).toBe(0);
      expect(a.output()).toContain(`OK: ${agentServer(t.hw, transport)} accepted key ${token.key} (token "edge", mode forward) for orders`);
      expect(a.output()).toContain(`orders -> ${svc.url}/hooks`);
      expect(a.output()).not.toContain(token.secret);
      expect(t.hw.agents.connections).toBe(0);
    }, 120_000);

    it("--check reports each failure with its own exit code", async () => {
      const cases: [Parameters<typeof spawnAgent>[0], number, RegExp][] = [
        [{ server: agentServer(t.hw, transport), key: token.key, secret: "as_wrong", bucket: "orders", forwardTo: svc.url }, AGENT_EXIT.unauthorized, /\(401\)/],
        [{ server: agentServer(t.hw, transport), key: token.key, secret: token.secret, bucket: "other", forwardTo: svc.url }, AGENT_EXIT.forbidden, /\(403/],
        [{ server: agentServer(t.hw, transport), key: token.key, secret: token.secret, bucket: "no-such-bucket", forwardTo: svc.url }, AGENT_EXIT.forbidden, /refused the buckets no-such-bucket .*\(403/],
        [{ server: `${scheme}://127.0.0.1:${await closedPort()}`, key: token.key, secret: token.secret, bucket: "orders", forwardTo: svc.url }, AGENT_EXIT.unreachable, /^hookwarden: cannot reach the gateway at \S+: ECONNREFUSED connect ECONNREFUSED 127\.0\.0\.1:\d+$/m],
        [{ server: agentServer(t.hw, transport), key: token.key, secret: token.secret, bucket: "orders", forwardTo: "ftp://internal/" }, AGENT_EXIT.error, /forwardTo for orders must be an http\(s\) URL/],
        [{ server: "ftp://127.0.0.1:21", key: token.key, secret: token.secret, bucket: "orders", forwardTo: svc.url }, AGENT_EXIT.error, /server must be an http\(s\):\/\/, ws\(s\):\/\/ \(WebSocket\) or grpc\(s\):\/\/ \(gRPC\) URL/],
      ];
      // In parallel: each is a process start (seconds under load).
      const runs = cases.map(([spec]) => agent({ ...spec, args: ["--check"] }));
      for (const [i, a] of runs.entries()) {
        const [, exit, message] = cases[i]!;
        expect((await a.exited).code, a.output()).toBe(exit);
        expect(a.output()).toMatch(message);
        expect(a.output()).not.toMatch(/^\s+at /m);
      }
    }, 120_000);

    it("a check connection gets the hello, is closed normally, and is never given a request", async () => {
      const raw = await rawAgent(`${agentUrl(agentServer(t.hw, transport), "orders")}&check=1`, token.key, token.secret);
      expect(raw.frames[0]).toMatchObject({ type: "hello", name: "edge", buckets: [{ name: "orders" }] });
      expect((await raw.closed).code).toBe(1000);
      expect(t.hw.agents.connections).toBe(0);
      expect(t.hw.agents.servedBuckets()).toEqual([]);
    });

    it("a transient failure (gateway not up yet) keeps the agent retrying until it connects", async () => {
      // The agent starts first against a port nothing listens on; it must still be running and
      // retrying, not exited, when the proxy appears there.
      const port = await closedPort();
      const a = agent({ server: `${scheme}://127.0.0.1:${port}`, key: token.key, secret: token.secret, bucket: "orders", forwardTo: svc.url });
      await until("two failed attempts", () => (a.output().match(/agent disconnected; reconnecting/g) ?? []).length >= 2, 30_000);
      expect(a.child.exitCode).toBeNull();
      const proxy = new FreezableProxy(agentServer(t.hw, transport));
      await proxy.start(port);
      try {
        await a.waitConnected(1, 60_000);
      } finally {
        await a.stop();
        await proxy.stop();
      }
    }, 120_000);
  });
}
