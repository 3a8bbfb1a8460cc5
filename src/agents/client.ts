import { request } from "undici";
import type { Logger } from "../logger/index.js";
import type { SecretValue } from "../vault/secret-value.js";
import { AGENT_EXIT, AgentStopError } from "./exit.js";
import { dialGrpc } from "./grpc/dial.js";
import type { AgentLink, DialEvents, Dialer } from "./link.js";
import { dialWebSocket } from "./ws-link.js";
import { CLOSE, HEARTBEAT_MS, helloSchema, maxFrameBytes, requestSchema, type AckFrame, type HelloFrame, type RequestFrame } from "./protocol.js";

export interface AgentRoute {
  bucket: string;
  forwardTo: string;
}

export interface AgentOptions {
  server: string;
  key: string;
  secret: SecretValue;
  routes: AgentRoute[];
  logger: Logger;
  maxConcurrency?: number;
  requestTimeoutMs?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  heartbeatMs?: number;
  maxPayloadSize?: number;
  /** CA certificates to trust for a `https://`, `wss://` or `grpcs://` server, instead of Node's default list. */
  ca?: Buffer;
}

/** How an agent's run ended: stopped by its owner, refused for good, or (`check` only) its outcome. */
export type AgentEnd =
  | { kind: "stopped" }
  | { kind: "refused"; error: AgentStopError }
  | { kind: "unreachable"; error: AgentStopError }
  | { kind: "checked"; hello: HelloFrame };

/**
 * The `detail` of the server's `{code, detail}` refusal, or the start of whatever else answered,
 * on one line: control characters (a hostile server's terminal escapes, forged log lines) become spaces.
 */
function serverDetail(text: string): string {
  let detail = text;
  try {
    const parsed = JSON.parse(text) as { detail?: unknown };
    if (typeof parsed.detail === "string") detail = parsed.detail;
  } catch {
    // not ours: a proxy's page
  }
  // eslint-disable-next-line no-control-regex
  return detail.replace(/[\u0000-\u001f\u007f-\u009f\s]+/g, " ").trim().slice(0, 300);
}

const DROP = new Set(["host", "connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te", "trailer", "proxy-connection"]);

/**
 * The agent: runs inside a private network, connects OUT to Hookwarden (nothing listens), and
 * delivers what it is pushed to the destinations in its own configuration only: the server
 * names a bucket, never a URL. Acks carry the local result (and, for tunnel tokens, the answer).
 * Reconnects with exponential backoff and jitter; pings the server and drops a silent connection.
 */
export class AgentClient {
  readonly #opts: Required<Omit<AgentOptions, "routes" | "ca">> & { routes: Map<string, URL>; ca?: Buffer };
  #link: AgentLink | undefined;
  readonly #closeWaiters: (() => void)[] = [];
  #mode: "forward" | "tunnel" = "forward";
  #attempt = 0;
  #stopped = false;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #active = 0;
  #connected = false;
  readonly #waiters: (() => void)[] = [];
  readonly #slots: (() => void)[] = [];
  readonly #byName = new Map<string, URL>();
  readonly #heartbeatFixed: boolean;
  #check = false;
  #lastFailure = "";
  #end!: (end: AgentEnd) => void;
  /** Resolves once, when the agent stops for good (see `AgentEnd`); transient failures never resolve it. */
  readonly done: Promise<AgentEnd>;

  constructor(opts: AgentOptions) {
    if (!/^(https?|wss?|grpcs?):$/.test(new URL(opts.server).protocol)) throw new Error(`server must be an http(s)://, ws(s):// (WebSocket) or grpc(s):// (gRPC) URL`);
    const routes = new Map<string, URL>();
    for (const r of opts.routes) {
      const u = new URL(r.forwardTo);
      if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error(`forwardTo for ${r.bucket} must be an http(s) URL`);
      routes.set(r.bucket, u);
    }
    this.#heartbeatFixed = opts.heartbeatMs !== undefined;
    this.done = new Promise<AgentEnd>((resolve) => (this.#end = resolve));
    this.#opts = {
      maxConcurrency: 32,
      requestTimeoutMs: 30_000,
      reconnectMinMs: 500,
      reconnectMaxMs: 30_000,
      heartbeatMs: HEARTBEAT_MS,
      maxPayloadSize: 1024 * 1024,
      ...opts,
      routes,
    };
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** Resolves once the agent is connected and has its hello (for tests and startup logs). */
  ready(): Promise<void> {
    return this.#connected ? Promise.resolve() : new Promise((resolve) => this.#waiters.push(resolve));
  }

  start(): void {
    this.#stopped = false;
    this.#connect();
  }

  /**
   * Connects once to validate the server address, the TLS setup, the key/secret and the buckets,
   * then closes: `done` tells the outcome. The server accepts a check connection like any other
   * but never pushes a request over it, so a check cannot take (and lose) a webhook.
   */
  check(): Promise<AgentEnd> {
    this.#check = true;
    this.#stopped = false;
    this.#connect();
    return this.done;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#end({ kind: "stopped" });
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    const link = this.#link;
    if (link) {
      await new Promise<void>((resolve) => {
        this.#closeWaiters.push(resolve);
        link.close(CLOSE.normal, "agent stopping");
        setTimeout(() => {
          link.terminate();
          resolve();
        }, 1000).unref();
      });
    }
  }

  #connect(): void {
    const { server, key, secret, routes, logger } = this.#opts;
    let lastPong = Date.now();
    let link: AgentLink | undefined;
    const beat = (every: number) => {
      if (this.#heartbeat) clearInterval(this.#heartbeat);
      this.#heartbeat = setInterval(() => {
        if (Date.now() - lastPong > every * 2) {
          logger.warn("no heartbeat from the server; reconnecting");
          link?.terminate();
          return;
        }
        link?.ping();
      }, every);
      this.#heartbeat.unref();
    };
    const events: DialEvents = {
      open: () => {
        this.#attempt = 0;
        lastPong = Date.now();
        beat(this.#opts.heartbeatMs);
      },
      refused: (status, text) => {
        const detail = serverDetail(text);
        if (status === 401 || status === 403) {
          // The answer will not change by asking again: stop, and say what to fix.
          const error =
            status === 401
              ? new AgentStopError("E_UNAUTHORIZED", `the server refused this agent's key or secret (401): check --key and HOOKWARDEN_AGENT_SECRET, or create a new agent token`, AGENT_EXIT.unauthorized)
              : new AgentStopError("E_FORBIDDEN", `the server refused the buckets ${[...routes.keys()].join(", ")} for this agent token (403${detail ? `: ${detail}` : ""}): each must exist and be among the token's buckets`, AGENT_EXIT.forbidden);
          logger.error({ status, code: error.code }, error.message);
          this.#stopped = true;
          this.#end({ kind: "refused", error });
        } else {
          this.#lastFailure = `the server answered ${status}${detail ? `: ${detail}` : ""}`;
          logger.warn({ status, reason: detail }, "the server refused the agent connection; will retry");
        }
      },
      alive: () => (lastPong = Date.now()),
      frame: (text) => {
        lastPong = Date.now();
        if (link) this.#onFrame(link, text, beat);
      },
      close: (code, reason) => {
        this.#connected = false;
        if (this.#link === link) this.#link = undefined;
        if (this.#heartbeat) clearInterval(this.#heartbeat);
        if (this.#check && !this.#stopped) {
          this.#stopped = true;
          const why = this.#lastFailure || `the connection closed (${code}${reason.length ? `: ${reason}` : ""})`;
          this.#end({ kind: "unreachable", error: new AgentStopError("E_UNAVAILABLE", `cannot reach the gateway at ${server}: ${why}`, AGENT_EXIT.unreachable) });
        }
        for (const w of this.#closeWaiters.splice(0)) w();
        if (this.#stopped) return;
        // Transient (unreachable, 5xx, a dropped connection): capped exponential backoff with jitter.
        const delay = Math.min(this.#opts.reconnectMaxMs, this.#opts.reconnectMinMs * 2 ** this.#attempt++) * (0.5 + Math.random() / 2);
        logger.warn({ code, reason, retryInMs: Math.round(delay) }, "agent disconnected; reconnecting");
        // Not unref'd: between a close and the next attempt this timer is all that keeps the
        // process alive; unref'd, `hookwarden agent` exited (code 0) the first time it lost the server.
        this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
      },
      // Why a connection failed (refused, DNS, an untrusted or mismatched TLS certificate) is what an
      // operator needs to see; the reconnect line alone only says code 1006.
      error: (err: NodeJS.ErrnoException) => {
        this.#lastFailure = err.code ? `${err.code} ${err.message}` : err.message;
        logger.warn({ code: err.code, reason: err.message }, "agent connection failed");
      },
    };
    const dial: Dialer = /^grpcs?:$/.test(new URL(server).protocol) ? dialGrpc : dialWebSocket;
    link = dial(
      {
        server,
        key,
        secret: secret.reveal(),
        buckets: [...routes.keys()],
        check: this.#check,
        maxFrameBytes: maxFrameBytes(this.#opts.maxPayloadSize),
        handshakeTimeoutMs: 10_000,
        ...(this.#opts.ca ? { ca: this.#opts.ca } : {}),
      },
      events,
    );
    this.#link = link;
  }

  #onFrame(link: AgentLink, text: string, beat: (every: number) => void): void {
    const { routes, logger } = this.#opts;
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch {
      link.close(CLOSE.invalid, "frames are JSON text");
      return;
    }
    const hello = helloSchema.safeParse(frame);
    if (hello.success && this.#check) {
      this.#stopped = true;
      this.#end({ kind: "checked", hello: hello.data });
      link.close(CLOSE.normal, "check done");
      return;
    }
    if (hello.success) {
      this.#mode = hello.data.mode;
      this.#connected = true;
      // Unless set here, the server's interval: one setting makes both sides notice a dead
      // connection equally fast (the hello used to announce it, and the agent ignored it).
      if (!this.#heartbeatFixed) beat(Math.max(50, hello.data.heartbeatMs));
      // Frames name the bucket; a route may have been configured by its id.
      this.#byName.clear();
      for (const b of hello.data.buckets) {
        const route = routes.get(b.name) ?? routes.get(b.id);
        if (route) this.#byName.set(b.name, route);
      }
      const missing = hello.data.buckets.filter((b) => !routes.has(b.name) && !routes.has(b.id)).map((b) => b.name);
      logger.info({ agentId: hello.data.agentId, mode: hello.data.mode, buckets: hello.data.buckets.map((b) => b.name) }, "agent connected");
      if (missing.length > 0) logger.warn({ missing }, "subscribed buckets without a local route: their requests will be refused");
      for (const w of this.#waiters.splice(0)) w();
      return;
    }
    const req = requestSchema.safeParse(frame);
    if (!req.success) {
      link.close(CLOSE.policy, "unexpected frame");
      return;
    }
    void this.#handle(link, req.data);
  }

  async #handle(link: AgentLink, frame: RequestFrame): Promise<void> {
    const started = performance.now();
    const ack = (a: Omit<AckFrame, "type" | "id">) => {
      if (link.open) link.send(JSON.stringify({ type: "ack", id: frame.id, ...a, durationMs: Math.round(performance.now() - started) }));
    };
    const base = this.#byName.get(frame.bucket);
    if (!base) return ack({ ok: false, status: 0, error: `this agent has no route for bucket ${frame.bucket}` });
    // Over the limit a request waits for a slot instead of being refused. The server bounds what
    // it pushes per output (its endpoint concurrency), but an agent serving several buckets gets
    // several outputs' worth, and each "agent busy" counted as a failed attempt at the internal
    // service and put the webhook on the retry schedule (5 s, then 5 min).
    if (this.#active < this.#opts.maxConcurrency) this.#active++;
    else {
      await new Promise<void>((resolve) => this.#slots.push(resolve));
      // Gone while waiting: the server re-sends it after the reconnect; sending now only duplicates.
      if (!link.open) return this.#freeSlot();
    }
    try {
      const url = new URL(base);
      if (frame.path) {
        // The path comes from the public caller. Dot segments (also written %2e) are resolved
        // inside it alone, clamped at its root: appended as they came, URL parsing resolved
        // `/../../admin` against the route's own path and let any caller reach every path of
        // the internal host (as src/ingress/forward.ts does for URL outputs).
        const scratch = new URL("http://suffix.invalid/");
        scratch.pathname = frame.path;
        url.pathname = `${url.pathname.replace(/\/+$/, "")}/${scratch.pathname.replace(/^\/+/, "")}`;
      }
      // As received: re-serialising (URLSearchParams) turned `%20` into `+` and `flag` into `flag=`.
      if (frame.query) url.search = url.search.length > 1 ? `${url.search.slice(1)}&${frame.query}` : frame.query;
      // Names from the original caller: `__proto__` or `constructor` must stay plain names.
      const headers: Record<string, string> = Object.create(null) as Record<string, string>;
      for (const [k, v] of frame.headers) if (!DROP.has(k.toLowerCase())) headers[k] = v;
      const body = Buffer.from(frame.body, "base64");
      const res = await request(url, {
        method: frame.method as "POST",
        headers,
        body: frame.method === "GET" || frame.method === "HEAD" ? null : body,
        headersTimeout: this.#opts.requestTimeoutMs,
        bodyTimeout: this.#opts.requestTimeoutMs,
      });
      const answer = Buffer.from(await res.body.arrayBuffer()).subarray(0, this.#opts.maxPayloadSize);
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      if (this.#mode === "tunnel") {
        const out: Record<string, string> = Object.create(null) as Record<string, string>;
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined && !DROP.has(k)) out[k] = Array.isArray(v) ? v.join(", ") : v;
        ack({ ok, status: res.statusCode, headers: out, body: answer.toString("base64") });
      } else {
        ack({ ok, status: res.statusCode });
      }
    } catch (err) {
      ack({ ok: false, status: 0, error: `local destination failed: ${(err as Error).message}`.slice(0, 1000) });
    } finally {
      this.#freeSlot();
    }
  }

  /** Hands the slot to the next waiting request, if any (so none can overtake it), or frees it. */
  #freeSlot(): void {
    const next = this.#slots.shift();
    if (next) next();
    else this.#active--;
  }
}
