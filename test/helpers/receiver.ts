import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  /** Name/value pairs as sent: `headers` cannot hold a header named `__proto__`. */
  rawHeaders: string[];
  body: string;
  at: number;
}

export type Responder = (req: Received) => { status?: number; body?: string | Buffer; headers?: Record<string, string>; delayMs?: number } | undefined;

/**
 * A webhook receiver on 127.0.0.1 that records every request. `respond` decides the answer
 * (default 200 "ok"); `waitFor(n)` resolves once `n` requests arrived.
 */
export class Receiver {
  readonly received: Received[] = [];
  respond: Responder = () => undefined;
  #server: Server;
  #waiters: { n: number; resolve: () => void }[] = [];
  url = "";

  constructor() {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const r: Received = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString("utf8"), at: Date.now() };
        this.received.push(r);
        const answer = this.respond(r) ?? {};
        const send = () => {
          if (res.destroyed) return;
          res.writeHead(answer.status ?? 200, { "content-type": "text/plain", ...answer.headers });
          res.end(answer.body ?? "ok");
        };
        if (answer.delayMs) setTimeout(send, answer.delayMs);
        else send();
        for (const w of this.#waiters.filter((w) => this.received.length >= w.n)) w.resolve();
        this.#waiters = this.#waiters.filter((w) => this.received.length < w.n);
      });
    });
    this.#server.keepAliveTimeout = 1000;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  waitFor(n: number, timeoutMs = 15_000): Promise<void> {
    if (this.received.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`receiver got ${this.received.length} of ${n} requests`)), timeoutMs);
      this.#waiters.push({ n, resolve: () => (clearTimeout(t), resolve()) });
    });
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
