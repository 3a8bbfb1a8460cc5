import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { connect, createServer as createNetServer, type AddressInfo, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { EventEmitter } from "node:events";
import { Client, Metadata, credentials, status as GrpcStatus, type ClientDuplexStream, type StatusObject } from "@grpc/grpc-js";
import WebSocket from "ws";
import { GRPC_METHOD, decodeFrame, encodeFrame } from "../../src/agents/grpc/frame-codec.js";
import { PING, PONG, closeCodeOf } from "../../src/agents/grpc/status.js";
import { AGENT_PATH } from "../../src/agents/protocol.js";
import { REPO_ROOT } from "./gateway-process.js";

export type Api = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<{ status: number; body: any; text: string }>;

/** Admin API calls against a gateway whose URL may change (a restarted child process keeps its port). */
export function apiAt(url: () => string, token: string): Api {
  return async (method, path, body, headers = {}) => {
    const res = await fetch(url() + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed, text };
  };
}

async function created(api: Api, path: string, body: unknown): Promise<any> {
  const res = await api("POST", path, body);
  if (res.status !== 201) throw new Error(`POST ${path} answered ${res.status}: ${res.text}`);
  return res.body;
}

/**
 * A bucket named `name` with one input (`input` settings) and one agent output (`output`
 * settings, e.g. `{broadcast: true}`).
 */
export async function agentBucket(
  api: Api,
  name: string,
  opts: { input?: Record<string, unknown>; output?: Record<string, unknown> } = {},
): Promise<{ bucket: any; input: any; output: any }> {
  const bucket = await created(api, "/api/v1/bucket", { name });
  const input = await created(api, `/api/v1/bucket/${bucket.id}/input`, { name: "in", ...opts.input });
  const output = await created(api, `/api/v1/bucket/${bucket.id}/output`, { type: "agent", ...opts.output });
  return { bucket, input, output };
}

export interface AgentToken {
  id: string;
  key: string;
  secret: string;
  name: string;
  mode: string;
  buckets: string[];
}

export async function createAgentToken(api: Api, body: { name: string; buckets: string[]; mode?: "forward" | "tunnel" }): Promise<AgentToken> {
  return (await created(api, "/api/v1/agent-token", body)) as AgentToken;
}

/** Polls `fn` until it returns something other than `undefined`/`false`; fails with `what` after `timeoutMs`. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** See test/helpers/gateway-process.ts: the child kills itself when this process dies, even by SIGKILL. */
const EXIT_WITH_PARENT = `data:text/javascript,${encodeURIComponent(
  'process.stdin.on("end", () => process.kill(process.pid, "SIGKILL")).on("error", () => {}).resume(); process.stdin.unref();',
)}`;

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

export interface AgentProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything the agent wrote (JSON log lines on stdout, errors on stderr). */
  output(): string;
  /** How many times it logged "agent connected" (one per accepted WebSocket). */
  connections(): number;
  /** Resolves once the agent has been accepted `n` times in total. */
  waitConnected(n?: number, timeoutMs?: number): Promise<void>;
  kill(signal: NodeJS.Signals): Promise<void>;
  /** SIGKILL unless it already exited; safe to call twice. */
  stop(): Promise<void>;
}

export interface AgentSpawnOptions {
  server: string;
  key: string;
  /** Passed as HOOKWARDEN_AGENT_SECRET, as the README says to. */
  secret: string;
  bucket?: string;
  forwardTo?: string;
  /** Routes for several buckets, written to a JSON config file in `dir`. */
  routes?: { bucket: string; forwardTo: string }[];
  dir?: string;
  args?: string[];
  /** `tsx` runs src/ (the default); `dist` runs the build (`node bin/hookwarden.js`). */
  runtime?: "tsx" | "dist";
  /** An installed `hookwarden` executable (name on `env.PATH`, or a path), run from `cwd` instead. */
  command?: string;
  /** Arguments before `agent`, e.g. the bin script when `command` is a node binary. */
  commandArgs?: string[];
  cwd?: string;
  /** More environment (e.g. PATH for `command`). */
  env?: Record<string, string>;
}

/**
 * `hookwarden agent` as a real child process (from src/ through tsx unless `runtime: "dist"`).
 * Does not wait for the connection: call `waitConnected()`.
 */
export function spawnAgent(opts: AgentSpawnOptions): AgentProcess {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("HOOKWARDEN_")) env[k] = v;
  env.HOOKWARDEN_AGENT_SECRET = opts.secret;
  const args = ["agent"];
  if (opts.routes) {
    const file = join(opts.dir!, `agent-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, JSON.stringify({ server: opts.server, key: opts.key, routes: opts.routes }));
    args.push("--config", file);
  } else {
    args.push("--server", opts.server, "--key", opts.key, "--bucket", opts.bucket!, "--forward-to", opts.forwardTo!);
  }
  args.push(...(opts.args ?? []));
  Object.assign(env, opts.env);
  const entry = opts.runtime === "dist" ? ["bin/hookwarden.js"] : ["--import", "tsx", "src/cli/main.ts"];
  if (opts.command) env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ""} --import ${EXIT_WITH_PARENT}`.trim();
  const [file, argv] = opts.command ? [opts.command, [...(opts.commandArgs ?? []), ...args]] : [process.execPath, ["--import", EXIT_WITH_PARENT, ...entry, ...args]];
  const child = spawn(file, argv, {
    cwd: opts.cwd ?? REPO_ROOT,
    env,
    stdio: ["pipe", "pipe", "pipe"],
  });
  live.add(child);
  let text = "";
  let connected = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  const onData = (c: Buffer) => {
    const chunk = c.toString("utf8");
    text = (text + chunk).slice(-200_000);
    connected += chunk.split('"msg":"agent connected"').length - 1;
    for (const w of waiters.filter((w) => connected >= w.n)) w.resolve();
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
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
  return {
    pid: child.pid!,
    child,
    exited,
    output: () => text,
    connections: () => connected,
    waitConnected: (n = 1, timeoutMs = 90_000) =>
      connected >= n
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`agent connected ${connected} of ${n} times within ${timeoutMs} ms\n--- agent output ---\n${text}`)), timeoutMs);
            void exited.then(({ code, signal }) => {
              clearTimeout(timer);
              reject(new Error(`agent exited (code ${code}, signal ${signal})\n--- agent output ---\n${text}`));
            });
            waiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
          }),
    kill,
    stop: () => kill("SIGKILL"),
  };
}

export function basicAuth(key: string, secret: string): string {
  return `Basic ${Buffer.from(`${key}:${secret}`).toString("base64")}`;
}

/** The transports an agent connects over; `HOOKWARDEN_TEST_TRANSPORTS=grpc` (or `ws`) narrows while iterating. */
export type Transport = "ws" | "grpc";
export const TRANSPORTS: Transport[] = (process.env.HOOKWARDEN_TEST_TRANSPORTS ?? "ws,grpc").split(",").filter((t): t is Transport => t === "ws" || t === "grpc");

/** Server overrides a transport needs: a gRPC listener on a free port. */
export function transportConfig(transport: Transport): { grpcPort?: number } {
  return transport === "grpc" ? { grpcPort: 0 } : {};
}

/** What `hookwarden agent --server` takes to reach `hw` over `transport`. */
export function agentServer(hw: { url: string; grpcUrl: string | undefined }, transport: Transport): string {
  if (transport === "ws") return hw.url;
  if (!hw.grpcUrl) throw new Error("this gateway has no gRPC listener: start it with transportConfig(\"grpc\")");
  return hw.grpcUrl;
}

/**
 * The URL a raw agent connects to: `ws(s)://…/agent/connect?buckets=` for a WebSocket gateway
 * URL, `grpc(s)://host:port/?buckets=` for a gRPC one (the query becomes metadata).
 */
export function agentUrl(server: string, buckets?: string): string {
  if (/^grpcs?:/.test(server)) {
    const g = new URL("/", server);
    if (buckets !== undefined) g.searchParams.set("buckets", buckets);
    return g.toString();
  }
  const u = new URL(AGENT_PATH, server.replace(/^http/, "ws"));
  if (buckets !== undefined) u.searchParams.set("buckets", buckets);
  return u.toString();
}

/** What an upgrade that the server refused looked like to the client. */
export interface Refusal {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** True if the client ever saw an open WebSocket. */
  opened: boolean;
}

/** Opens a WebSocket (or gRPC stream) that is expected to be refused before the upgrade completes. */
export function refusedUpgrade(url: string, headers: Record<string, string>): Promise<Refusal> {
  if (/^grpcs?:/.test(url)) {
    return new Promise((resolve) => {
      const s = grpcStream(url, headers);
      let opened = false;
      s.call.on("data", () => {
        opened = true;
        s.call.cancel();
      });
      s.call.on("error", () => {});
      s.call.on("status", (st: StatusObject) => {
        s.client.close();
        const status = st.code === GrpcStatus.UNAUTHENTICATED ? 401 : st.code === GrpcStatus.PERMISSION_DENIED ? 403 : opened ? 101 : 1000 + st.code;
        resolve({ status, headers: {}, body: st.details, opened });
      });
    });
  }
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    let opened = false;
    ws.on("open", () => {
      opened = true;
      ws.terminate();
      resolve({ status: 101, headers: {}, body: "", opened });
    });
    ws.on("unexpected-response", (_req, res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8"), opened });
        ws.terminate();
      });
    });
    ws.on("error", (err) => {
      if (!opened) reject(err);
    });
  });
}

/**
 * A hand-driven agent over a raw `ws` client: records every frame the server sends and how the
 * connection closed. It acknowledges nothing by itself.
 */
export interface RawAgent {
  /** The WebSocket, or over gRPC a stand-in with the same `send`/`close`/`terminate`/"message". */
  ws: Pick<WebSocket, "send" | "close" | "terminate" | "on">;
  frames: any[];
  closed: Promise<{ code: number; reason: string }>;
  isClosed: () => boolean;
}

export function rawAgent(url: string, key: string, secret: string, opts: { autoPong?: boolean } = {}): Promise<RawAgent> {
  if (/^grpcs?:/.test(url)) return rawGrpcAgent(url, key, secret, opts);
  const ws = new WebSocket(url, { headers: { authorization: basicAuth(key, secret) }, perMessageDeflate: false, autoPong: opts.autoPong ?? true });
  const frames: any[] = [];
  let isClosed = false;
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on("close", (code, reason) => {
      isClosed = true;
      resolve({ code, reason: reason.toString() });
    }),
  );
  ws.on("error", () => {});
  ws.on("message", (data) => frames.push(JSON.parse(String(data))));
  return new Promise((resolve, reject) => {
    ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused with ${res.statusCode}`)));
    ws.once("error", reject);
    // The hello frame is the server's "you are connected".
    const onMessage = () => {
      ws.off("message", onMessage);
      resolve({ ws, frames, closed, isClosed: () => isClosed });
    };
    ws.on("message", onMessage);
  });
}

/** A `Connect` stream; `?buckets=` and `&check=1` in the URL become metadata, `headers` are sent as they are. */
function grpcStream(url: string, headers: Record<string, string>): { client: Client; call: ClientDuplexStream<string, string> } {
  const u = new URL(url);
  const client = new Client(`${u.hostname}:${u.port}`, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
  const md = new Metadata();
  for (const [k, v] of Object.entries(headers)) md.set(k.toLowerCase(), v);
  const buckets = u.searchParams.get("buckets");
  if (buckets !== null) md.set("hookwarden-buckets", buckets);
  if (u.searchParams.get("check") === "1") md.set("hookwarden-check", "1");
  return { client, call: client.makeBidiStreamRequest(GRPC_METHOD, encodeFrame, decodeFrame, md, {}) };
}

/**
 * `rawAgent` over gRPC. The close code is the gateway's trailer (or what its status maps to);
 * heartbeats are answered unless `autoPong: false`, and never recorded as frames.
 */
function rawGrpcAgent(url: string, key: string, secret: string, opts: { autoPong?: boolean }): Promise<RawAgent> {
  const { client, call } = grpcStream(url, { authorization: basicAuth(key, secret) });
  const frames: any[] = [];
  let isClosed = false;
  const socket = new EventEmitter();
  let onClosed!: (c: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => (onClosed = resolve));
  const finish = (code: number, reason: string) => {
    if (isClosed) return;
    isClosed = true;
    client.close();
    onClosed({ code, reason });
    socket.emit("close", code, Buffer.from(reason));
  };
  const ws = Object.assign(socket, {
    send: (data: string | Buffer) => {
      if (!isClosed) call.write(typeof data === "string" ? data : data.toString("utf8"));
    },
    close: () => {
      if (!isClosed) call.end();
    },
    terminate: () => {
      call.cancel();
      finish(1006, "terminated");
    },
  }) as unknown as RawAgent["ws"];
  return new Promise((resolve, reject) => {
    let first = true;
    call.on("data", (text: string) => {
      if (text === PING) {
        if (opts.autoPong ?? true) call.write(PONG);
        return;
      }
      frames.push(JSON.parse(text));
      socket.emit("message", Buffer.from(text));
      if (first) {
        first = false;
        resolve({ ws, frames, closed, isClosed: () => isClosed });
      }
    });
    call.on("error", () => {});
    call.on("status", (st: StatusObject) => {
      if (first) reject(new Error(`upgrade refused with ${st.code === GrpcStatus.UNAUTHENTICATED ? 401 : st.code === GrpcStatus.PERMISSION_DENIED ? 403 : GrpcStatus[st.code]}: ${st.details}`));
      finish(closeCodeOf(st.code, st.metadata), st.details);
    });
  });
}

/** How many times each body arrived at a receiver. */
export function bodyCounts(received: readonly { body: string }[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of received) m.set(r.body, (m.get(r.body) ?? 0) + 1);
  return m;
}

/** POSTs a webhook to a public input URL; returns status, headers and body text. */
export async function postWebhook(inputUrl: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(inputUrl, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/**
 * A TCP relay on 127.0.0.1 in front of the gateway that can black-hole its current connections
 * (`freeze()`): bytes in either direction are dropped and no close is passed on, as when a NAT
 * or a Wi-Fi link silently dies. Connections opened after a freeze pass normally.
 */
export class FreezableProxy {
  url = "";
  readonly #server: Server;
  readonly #scheme: string;
  readonly #pairs = new Set<{ a: Socket; b: Socket; frozen: boolean }>();

  constructor(target: string) {
    const t = new URL(target);
    // Whatever the target speaks (http:, grpc:) passes through unchanged, so the URL keeps its scheme.
    this.#scheme = t.protocol;
    this.#server = createNetServer((client) => {
      const upstream = connect(Number(t.port), t.hostname);
      const pair = { a: client, b: upstream, frozen: false };
      this.#pairs.add(pair);
      const relay = (from: Socket, to: Socket) => {
        from.on("data", (c: Buffer) => {
          if (!pair.frozen) to.write(c);
        });
        from.on("close", () => {
          if (pair.frozen) return; // the peer must not learn of it; stop() cleans up
          to.destroy();
          this.#pairs.delete(pair);
        });
        from.on("error", () => {});
      };
      relay(client, upstream);
      relay(upstream, client);
    });
  }

  /** Listens on `port` (any free one by default). */
  async start(port = 0): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(port, "127.0.0.1", resolve));
    this.url = `${this.#scheme}//127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  /** Black-holes every connection open now; returns how many. */
  freeze(): number {
    let n = 0;
    for (const p of this.#pairs) if (!p.frozen) (p.frozen = true), n++;
    return n;
  }

  async stop(): Promise<void> {
    for (const p of this.#pairs) {
      p.a.destroy();
      p.b.destroy();
    }
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
