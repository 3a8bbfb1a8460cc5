import { randomUUID } from "node:crypto";
import { connect, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { DIALECTS } from "../helpers/dialects.js";
import { send } from "../helpers/ingress.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

interface Stalled {
  socket: Socket;
  /** Resolves when the socket closes, with what the server wrote before closing it. */
  closed: Promise<string>;
}

/**
 * A connection that sends a request's headers and the first bytes of a 1,000-byte body, then
 * nothing. The socket is never closed from this side.
 */
async function stall(url: string, opts: { localAddress?: string; path?: string } = {}): Promise<Stalled> {
  const { port } = new URL(url);
  const socket = connect({ host: "127.0.0.1", port: Number(port), ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
  let received = "";
  socket.on("data", (c: Buffer) => (received += c.toString("latin1")));
  socket.on("error", () => {});
  const closed = new Promise<string>((resolve) => socket.once("close", () => resolve(received)));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("close", () => reject(new Error("closed before connecting")));
  });
  socket.write(`POST ${opts.path ?? `/in/${randomUUID()}`} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"order":`);
  return { socket, closed };
}

/** Connections the server still holds open. */
function openConnections(t: TestServer): Promise<number> {
  return new Promise((resolve, reject) => t.hw.api.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}

/** The server's log lines, parsed. */
function logLines(t: TestServer): any[] {
  return t
    .logs()
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l));
}

for (const dialect of DIALECTS) {
  describe(`slow and hostile clients cannot exhaust the server (${dialect})`, () => {
    const held: Socket[] = [];
    afterEach(() => {
      for (const s of held.splice(0)) s.destroy();
    });

    describe("stalled bodies", () => {
      let t: TestServer;
      beforeAll(async () => {
        t = await startTestServer(dialect, { inboundBodyIdleTimeout: 15_000, maxConnectionsPerIp: 1_000 });
      });
      afterAll(async () => t?.stop());

      it("answers /health and the API while 300 stalled bodies are held, and closes each after the body idle timeout", async () => {
        const stalled = await Promise.all(Array.from({ length: 300 }, () => stall(t.url)));
        held.push(...stalled.map((s) => s.socket));
        await vi.waitFor(async () => expect(await openConnections(t)).toBeGreaterThanOrEqual(300), { timeout: 10_000 });
        const health = await send(t.url, "/health");
        expect([health.status, health.json]).toEqual([200, { status: "ok" }]);
        expect((await send(t.url, "/api/v1/app", { headers: { authorization: `Bearer ${t.token}` } })).status).toBe(200);
        // Each stalled body is cut off by the server (this side never closes them).
        await Promise.all(stalled.map((s) => s.closed));
        await vi.waitFor(async () => expect(await openConnections(t)).toBe(0), { timeout: 10_000 });
      }, 90_000);
    });

    describe("a body that trickles in", () => {
      let t: TestServer;
      beforeAll(async () => {
        t = await startTestServer(dialect, { inboundRequestTimeout: 1_000, inboundHeadersTimeout: 1_000 });
      });
      afterAll(async () => t?.stop());

      it("is cut off at the request timeout with a 408 even though a byte arrives every 100 ms", async () => {
        const s = await stall(t.url);
        held.push(s.socket);
        let sent = 0;
        const drip = setInterval(() => {
          if (!s.socket.destroyed && sent < 900) {
            s.socket.write("1");
            sent++;
          }
        }, 100);
        try {
          const written = await s.closed;
          expect(written).toMatch(/^HTTP\/1\.1 408 /);
          expect(sent).toBeLessThan(900);
        } finally {
          clearInterval(drip);
        }
        const health = await send(t.url, "/health");
        expect(health.status).toBe(200);
      }, 30_000);
    });

    describe("one address opening many connections", () => {
      let t: TestServer;
      beforeAll(async () => {
        t = await startTestServer(dialect, { maxConnectionsPerIp: 20, inboundBodyIdleTimeout: 60_000 });
      });
      afterAll(async () => t?.stop());

      it("gets at most maxConnectionsPerIp of them; other addresses are still answered", async () => {
        const kept: Stalled[] = [];
        for (let i = 0; i < 20; i++) {
          const s = await stall(t.url);
          held.push(s.socket);
          kept.push(s);
        }
        // Past the cap the server closes the connection at once, without reading the request.
        const refused: Promise<string>[] = [];
        for (let i = 0; i < 10; i++) {
          const { port } = new URL(t.url);
          const socket = connect({ host: "127.0.0.1", port: Number(port) });
          socket.on("error", () => {});
          held.push(socket);
          refused.push(new Promise((resolve) => socket.once("close", () => resolve("closed"))));
        }
        expect(await Promise.all(refused)).toEqual(Array(10).fill("closed"));

        // Another client (another loopback address) is answered as usual.
        const health = await send(t.url, "/health", { localAddress: "127.0.0.2" });
        expect(health.status).toBe(200);
        const api = await fetch(`${t.url}/api/v1/app`, { headers: { authorization: `Bearer ${t.token}` } }).catch(() => undefined);
        // From the capped address itself, nothing more.
        expect(api).toBeUndefined();

        // Once it lets go, it is served again.
        for (const s of kept) s.socket.destroy();
        await Promise.all(kept.map((s) => s.closed));
        await vi.waitFor(async () => expect((await send(t.url, "/health")).status).toBe(200), { timeout: 10_000 });
      }, 30_000);
    });

    describe("all clients together", () => {
      let t: TestServer;
      beforeAll(async () => {
        t = await startTestServer(dialect, { maxConnections: 25, maxConnectionsPerIp: 0, inboundBodyIdleTimeout: 60_000 });
      });
      afterAll(async () => t?.stop());

      it("get at most maxConnections; past it a new connection is closed at once, and served again once one is free", async () => {
        const kept = await Promise.all(Array.from({ length: 25 }, (_, i) => stall(t.url, { localAddress: `127.0.0.${10 + (i % 5)}` })));
        held.push(...kept.map((s) => s.socket));
        await vi.waitFor(async () => expect(await openConnections(t)).toBe(25), { timeout: 10_000 });
        await expect(send(t.url, "/health", { localAddress: "127.0.0.3" })).rejects.toThrow();
        kept[0]!.socket.destroy();
        await kept[0]!.closed;
        await vi.waitFor(async () => expect((await send(t.url, "/health", { localAddress: "127.0.0.3" })).status).toBe(200), { timeout: 10_000 });
      }, 30_000);
    });

    describe("the log when clients abort or time out", () => {
      let t: TestServer;
      beforeAll(async () => {
        t = await startTestServer(dialect, { maxConnectionsPerIp: 1_000, inboundBodyIdleTimeout: 60_000 });
      });
      afterAll(async () => t?.stop());

      it("holds one short line and one summary for 300 aborted requests, and no stack trace", async () => {
        const stalled = await Promise.all(Array.from({ length: 300 }, () => stall(t.url)));
        held.push(...stalled.map((s) => s.socket));
        await vi.waitFor(async () => expect(await openConnections(t)).toBeGreaterThanOrEqual(300), { timeout: 10_000 });
        for (const s of stalled) s.socket.destroy();
        await vi.waitFor(async () => expect(await openConnections(t)).toBe(0), { timeout: 10_000 });
        // Stopping writes the summary of what is still counted.
        await t.stop();

        const lines = logLines(t);
        expect(t.logs()).not.toContain("stack");
        expect(lines.filter((l) => l.level >= 50)).toEqual([]);
        const drops = lines.filter((l) => /client connection/.test(l.msg));
        expect(drops).toHaveLength(2);
        expect(drops[0]).toMatchObject({ msg: "client connection dropped", reason: "aborted", ip: "127.0.0.1" });
        expect(drops[1]).toMatchObject({ msg: "more client connections dropped", dropped: { aborted: 299, timeout: 0, refused: 0 }, total: 299 });
      }, 60_000);
    });
  });
}
