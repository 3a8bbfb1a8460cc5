import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { randomUUID } from "node:crypto";
import { WebSocketServer } from "ws";
import type { Context } from "../context/index.js";
import { responseText, type SendResult } from "../delivery/http-sender.js";
import { onAbort } from "../util/on-abort.js";
import { authenticateAgent, type AgentTokenRow } from "./tokens.js";
import type { AgentLink } from "./link.js";
import { AGENT_PATH, CLOSE, HEARTBEAT_MS, ackSchema, maxFrameBytes, type AckFrame, type HelloFrame, type RequestFrame } from "./protocol.js";
import { wsLink } from "./ws-link.js";

interface Connection {
  id: string;
  token: AgentTokenRow;
  link: AgentLink;
  buckets: Set<string>;
  connectedAt: number;
  alive: boolean;
  pending: Map<string, (r: SendResult) => void>;
}

/** A connecting agent's credentials and buckets, checked (`AgentHub.authorize`). */
export type Admission =
  | { ok: true; token: AgentTokenRow; buckets: { id: string; name: string }[] }
  | { ok: false; status: 401 | 403; code: "E_UNAUTHORIZED" | "E_FORBIDDEN"; detail: string };

export interface AgentDelivery {
  result: SendResult;
  /** Who took it: `agent:<token name>/<connection>`. */
  via: string;
}

const failure = (code: "E_AGENT_UNAVAILABLE" | "E_AGENT_DISCONNECTED" | "E_TIMEOUT" | "E_CONNECT", detail: string): SendResult => ({
  ok: false,
  statusCode: 0,
  headers: {},
  body: "",
  durationMs: 0,
  errorCode: code,
  errorDetail: detail,
});

function reply(socket: Duplex, status: number, text: string, code: string): void {
  const body = JSON.stringify({ code, detail: text });
  socket.end(`HTTP/1.1 ${status} ${status === 401 ? "Unauthorized" : status === 403 ? "Forbidden" : "Bad Request"}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

/**
 * The server side of agents, over WebSocket (`attach`) or gRPC (grpc/listener.ts, through
 * `authorize` and `admit`): authenticates them before any frame flows (over WebSocket a wrong
 * secret gets a plain 401 and no socket), tracks which buckets each connection serves, pushes
 * requests and waits for acks, and pings every connection so a dead one is dropped within two
 * heartbeats. Several agents on one bucket share its requests round-robin unless the output
 * broadcasts.
 */
export class AgentHub {
  readonly #ctx: Context;
  readonly #wss: WebSocketServer;
  readonly #connections = new Map<string, Connection>();
  readonly #cursor = new Map<string, number>();
  readonly #onConnect: (bucketIds: string[]) => void;
  readonly #heartbeatMs: number;
  #heartbeat: NodeJS.Timeout | undefined;
  #closing = false;

  constructor(ctx: Context, opts: { onConnect: (bucketIds: string[]) => void; heartbeatMs?: number }) {
    this.#ctx = ctx;
    this.#onConnect = opts.onConnect;
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: maxFrameBytes(ctx.config.maxPayloadSize), perMessageDeflate: false });
    const every = opts.heartbeatMs ?? HEARTBEAT_MS;
    this.#heartbeatMs = every;
    this.#heartbeat = setInterval(() => {
      for (const c of this.#connections.values()) {
        if (!c.alive) {
          ctx.logger.warn({ agent: c.token.name, connection: c.id }, "agent missed its heartbeat; dropping the connection");
          c.link.terminate();
          continue;
        }
        c.alive = false;
        c.link.ping();
      }
    }, every);
    this.#heartbeat.unref();
  }

  /** Serves `GET /agent/connect` upgrades on the HTTP server the API listens on. */
  attach(server: Server): void {
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      // Node removes its own error handler from a socket it hands to "upgrade": a client that
      // resets while its credentials are looked up made the 401 write throw ECONNRESET with no
      // listener, an uncaught exception that stopped the whole gateway.
      socket.on("error", () => socket.destroy());
      const url = new URL(req.url ?? "/", "http://agent");
      if (url.pathname !== AGENT_PATH) return reply(socket, 400, "Unknown upgrade path", "E_NOT_FOUND");
      void this.#upgrade(req, socket, head, url).catch((err: unknown) => {
        this.#ctx.logger.error({ err }, "agent upgrade failed");
        socket.destroy();
      });
    });
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): Promise<void> {
    const admission = await this.authorize(req.headers.authorization, url.searchParams.get("buckets"));
    if (!admission.ok) return reply(socket, admission.status, admission.detail, admission.code);
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.admit(wsLink(ws), admission, url.searchParams.get("check") === "1"));
  }

  /**
   * Checks a connecting agent's Basic credentials and requested buckets (names or ids, comma-
   * separated; none: all of the token's), whatever the transport: a refusal is answered before
   * any frame flows (WebSocket: an HTTP status instead of the upgrade; gRPC: the stream's status).
   */
  async authorize(authorization: string | undefined, bucketList: string | null | undefined): Promise<Admission> {
    const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization ?? "");
    const decoded = m ? Buffer.from(m[1]!, "base64").toString("utf8") : "";
    const at = decoded.indexOf(":");
    const token = at > 0 ? await authenticateAgent(this.#ctx, decoded.slice(0, at), decoded.slice(at + 1)) : undefined;
    if (!token) return { ok: false, status: 401, code: "E_UNAUTHORIZED", detail: "Unknown agent key or wrong secret" };
    const allowed = JSON.parse(token.buckets) as string[];
    const buckets = await this.#ctx.store.db.selectFrom("buckets").select(["id", "name"]).where("id", "in", allowed).execute();
    const wanted = (bucketList ?? "").split(",").map((b) => b.trim()).filter(Boolean);
    const chosen = wanted.length === 0 ? buckets : wanted.map((w) => buckets.find((b) => b.id === w || b.name === w));
    if (chosen.some((b) => b === undefined)) return { ok: false, status: 403, code: "E_FORBIDDEN", detail: "This agent token may not subscribe to that bucket" };
    return { ok: true, token, buckets: chosen as { id: string; name: string }[] };
  }

  /**
   * Takes an authorised link: registered and served, or, for `hookwarden agent --check`, the same
   * hello a real connection gets and then closed; a check is never registered, so no request is
   * pushed to a process that is about to exit.
   */
  admit(link: AgentLink, admission: Extract<Admission, { ok: true }>, check: boolean): void {
    if (check) {
      link.listen({ frame: () => {}, alive: () => {}, close: () => {}, error: () => {} });
      link.send(JSON.stringify(this.#hello(randomUUID(), admission.token, admission.buckets)));
      link.close(CLOSE.normal, "check done");
      return;
    }
    if (this.#closing) return link.close(CLOSE.goingAway, "server shutting down");
    this.#accept(link, admission.token, admission.buckets);
  }

  #accept(link: AgentLink, token: AgentTokenRow, buckets: { id: string; name: string }[]): void {
    const { logger } = this.#ctx;
    const conn: Connection = { id: randomUUID(), token, link, buckets: new Set(buckets.map((b) => b.id)), connectedAt: this.#ctx.clock.now(), alive: true, pending: new Map() };
    this.#connections.set(conn.id, conn);
    link.listen({
      alive: () => (conn.alive = true),
      frame: (text) => {
        let frame: unknown;
        try {
          frame = JSON.parse(text);
        } catch {
          link.close(CLOSE.invalid, "frames are JSON text");
          return;
        }
        const ack = ackSchema.safeParse(frame);
        if (!ack.success) {
          link.close(CLOSE.policy, "unexpected frame");
          return;
        }
        this.#settle(conn, ack.data);
      },
      close: () => {
        if (!this.#connections.delete(conn.id)) return;
        for (const done of conn.pending.values()) done(failure("E_AGENT_DISCONNECTED", "The agent disconnected before acknowledging"));
        conn.pending.clear();
        logger.info({ agent: token.name, connection: conn.id }, "agent disconnected");
      },
      error: (err) => logger.warn({ err, agent: token.name }, "agent connection error"),
    });
    link.send(JSON.stringify(this.#hello(conn.id, token, buckets)));
    logger.info({ agent: token.name, connection: conn.id, buckets: buckets.map((b) => b.name) }, "agent connected");
    this.#onConnect([...conn.buckets]);
  }

  #settle(conn: Connection, a: AckFrame): void {
    const { token } = conn;
    const done = conn.pending.get(a.id);
    if (!done) return; // late ack of a delivery already timed out: the job is retried anyway
    conn.pending.delete(a.id);
    const ok = a.ok && a.status >= 200 && a.status < 300;
    // Tunnel answers are bytes (an image, a protobuf): kept whole for the waiting caller; the
    // attempt record keeps the first `responseBodyLimit` bytes as text, like any other output.
    const raw = token.mode === "tunnel" && a.body ? Buffer.from(a.body, "base64") : Buffer.alloc(0);
    done({
      ok,
      statusCode: a.status,
      headers: token.mode === "tunnel" ? (a.headers ?? {}) : {},
      ...responseText(raw, this.#ctx.config.responseBodyLimit),
      raw,
      durationMs: Math.round(a.durationMs ?? 0),
      errorCode: ok ? null : a.status === 0 ? "E_CONNECT" : a.status === 401 || a.status === 403 ? "E_ENDPOINT_AUTH" : "E_HTTP_STATUS",
      errorDetail: ok ? null : (a.error ?? `internal destination answered ${a.status}`),
    });
  }

  #hello(agentId: string, token: AgentTokenRow, buckets: { id: string; name: string }[]): HelloFrame {
    return { type: "hello", agentId, name: token.name, mode: token.mode as HelloFrame["mode"], buckets, heartbeatMs: this.#heartbeatMs };
  }

  /** The live connections of one agent token on this node: since when, serving which buckets. */
  connectionsOf(tokenId: string): { id: string; connectedAt: number; buckets: string[] }[] {
    const out = [];
    for (const c of this.#connections.values()) if (c.token.id === tokenId) out.push({ id: c.id, connectedAt: c.connectedAt, buckets: [...c.buckets] });
    return out.sort((a, b) => a.connectedAt - b.connectedAt);
  }

  /** The buckets agents connected to this node serve. */
  servedBuckets(): string[] {
    const out = new Set<string>();
    for (const c of this.#connections.values()) for (const b of c.buckets) out.add(b);
    return [...out];
  }

  /** True when an agent connected to this node serves the bucket. */
  serves(bucketId: string): boolean {
    for (const c of this.#connections.values()) if (c.buckets.has(bucketId)) return true;
    return false;
  }

  /** The mode of the agents serving a bucket here (tokens of one bucket may differ; the first wins). */
  modeFor(bucketId: string): "forward" | "tunnel" | undefined {
    for (const c of this.#connections.values()) if (c.buckets.has(bucketId)) return c.token.mode as "forward" | "tunnel";
    return undefined;
  }

  /**
   * Pushes a request to one agent of the bucket (round-robin) or, with `broadcast`, to every
   * connected one; resolves with the ack (all must succeed for a broadcast to count as delivered).
   */
  async deliver(bucketId: string, frame: Omit<RequestFrame, "type" | "id">, opts: { broadcast: boolean; timeoutMs: number; signal?: AbortSignal }): Promise<AgentDelivery> {
    if (this.#closing) return { result: failure("E_AGENT_UNAVAILABLE", "This node is shutting down"), via: "agent" };
    const conns = [...this.#connections.values()].filter((c) => c.buckets.has(bucketId));
    if (conns.length === 0) return { result: failure("E_AGENT_UNAVAILABLE", "No agent serves this bucket on this node"), via: "agent" };
    const targets = opts.broadcast ? conns : [conns[(this.#cursor.get(bucketId) ?? 0) % conns.length]!];
    this.#cursor.set(bucketId, (this.#cursor.get(bucketId) ?? 0) + 1);
    const started = performance.now();
    const results = await Promise.all(targets.map((c) => this.#sendTo(c, frame, opts)));
    const bad = results.find((r) => !r.ok);
    const result = { ...(bad ?? results[0]!), durationMs: Math.round(performance.now() - started) };
    return { result, via: `agent:${targets.map((t) => `${t.token.name}/${t.id.slice(0, 8)}`).join(",")}` };
  }

  #sendTo(conn: Connection, frame: Omit<RequestFrame, "type" | "id">, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<SendResult> {
    const id = randomUUID();
    return new Promise<SendResult>((resolve) => {
      const timer = setTimeout(() => {
        conn.pending.delete(id);
        offShutdown?.();
        resolve(failure("E_TIMEOUT", "The agent did not acknowledge within the attempt timeout"));
      }, opts.timeoutMs);
      const offShutdown = opts.signal
        ? onAbort(opts.signal, () => {
            conn.pending.delete(id);
            clearTimeout(timer);
            resolve(failure("E_AGENT_DISCONNECTED", "Shutting down"));
          })
        : undefined;
      conn.pending.set(id, (r) => {
        clearTimeout(timer);
        offShutdown?.();
        resolve(r);
      });
      conn.link.send(JSON.stringify({ type: "request", id, ...frame } satisfies RequestFrame), (err) => {
        if (!err) return;
        conn.pending.get(id)?.(failure("E_AGENT_DISCONNECTED", "Could not write to the agent"));
        conn.pending.delete(id);
      });
    });
  }

  /** Drops every connection of a revoked token. */
  disconnectToken(tokenId: string): void {
    for (const c of this.#connections.values()) if (c.token.id === tokenId) c.link.close(CLOSE.revoked, "token revoked");
  }

  get connections(): number {
    return this.#connections.size;
  }

  async close(): Promise<void> {
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    // Deliveries already pushed get their acks first (bounded by the shutdown grace); new ones
    // wait for the next start. Closing at once dropped every unacknowledged delivery, and the
    // restarted server sent it again: a duplicate at the internal service on each graceful restart.
    this.#closing = true;
    const deadline = Date.now() + this.#ctx.config.shutdownGrace;
    while (Date.now() < deadline && [...this.#connections.values()].some((c) => c.pending.size > 0)) await new Promise((r) => setTimeout(r, 10));
    for (const c of this.#connections.values()) c.link.close(CLOSE.goingAway, "server shutting down");
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }
}
