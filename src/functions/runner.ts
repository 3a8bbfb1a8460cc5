import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { HookwardenError, type ErrorCode } from "../errors/index.js";
import { Redactor } from "../redaction/index.js";
import type { SecretValue } from "../vault/secret-value.js";
import { SANDBOX_WORKER_CODE } from "./sandbox-worker.js";

/** Per-call caps. Every call gets a fresh QuickJS runtime, so each cap applies to one call only. */
export interface FunctionLimits {
  /** The sandbox thread's WASM heap beyond what QuickJS needs to start (one call at a time per thread). */
  memoryBytes: number;
  /** QuickJS stack (runtime.setMaxStackSize): deep recursion fails here, not in the thread. */
  stackBytes: number;
  /** CPU cap in real elapsed milliseconds, from the module's evaluation to the handler's result. */
  timeoutMs: number;
  /** Longest JSON result accepted, in characters. */
  outputChars: number;
  consoleLines: number;
  consoleBytes: number;
  consoleLineChars: number;
}

export const DEFAULT_FUNCTION_LIMITS: Readonly<FunctionLimits> = Object.freeze({
  memoryBytes: 16 * 1024 * 1024,
  stackBytes: 256 * 1024,
  timeoutMs: 500,
  outputChars: 1024 * 1024,
  consoleLines: 100,
  consoleBytes: 16 * 1024,
  consoleLineChars: 2000,
});

export interface ConsoleLine {
  level: string;
  text: string;
}

export interface FunctionCall {
  code: string;
  /** JSON-serialisable input handed to the handler (a deep copy: the function cannot reach ours). */
  input: unknown;
  /** Vault values the function may read by name with `secrets.get(name)`. */
  secrets?: ReadonlyMap<string, SecretValue>;
  /** What `Date.now()` returns inside the function (ms since the epoch). */
  now: number;
  /** Seed of `Math.random` inside the function. */
  seed?: number;
}

export type FunctionOutcome =
  | { ok: true; result: unknown; console: ConsoleLine[]; consoleTruncated: boolean; redactor: Redactor }
  | { ok: false; error: HookwardenError; console: ConsoleLine[]; consoleTruncated: boolean; redactor: Redactor };

interface WorkerReply {
  id: number;
  ok: boolean;
  output?: string | null;
  kind?: "syntax" | "timeout" | "memory" | "error" | "output";
  name?: string;
  message?: string;
  line?: number;
  column?: number;
  console: ConsoleLine[];
  consoleTruncated: boolean;
  secretsRead: string[];
}

interface Pending {
  id: number;
  job: Record<string, unknown>;
  resolve: (reply: WorkerReply) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  busy: Pending | undefined;
  watchdog: NodeJS.Timeout | undefined;
}

const CODES: Record<NonNullable<WorkerReply["kind"]>, ErrorCode> = {
  syntax: "E_FUNCTION_SYNTAX",
  timeout: "E_FUNCTION_TIMEOUT",
  memory: "E_FUNCTION_MEMORY",
  error: "E_FUNCTION_ERROR",
  output: "E_FUNCTION_OUTPUT_TOO_LARGE",
};

/**
 * Runs functions in QuickJS (WebAssembly) on a small pool of worker threads. The gateway's event
 * loop never executes user code: a call spinning until its CPU cap occupies one sandbox thread
 * while every other request is answered. Calls beyond the pool's size wait their turn in order.
 * A thread that dies (or misses a watchdog set well past the CPU cap) is replaced; its call fails
 * with a stable code, and nothing else notices.
 *
 * @example
 * const runner = new FunctionRunner({ threads: 2 });
 * const out = await runner.run({ code: "export default (x) => x.a + 1", input: { a: 1 }, now: Date.now() });
 * // out.ok && out.result === 2
 */
export class FunctionRunner {
  readonly limits: Readonly<FunctionLimits>;
  readonly #threads: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Pending[] = [];
  #nextId = 1;
  #closed = false;

  constructor(opts: { threads?: number; limits?: Partial<FunctionLimits> } = {}) {
    this.#threads = Math.max(1, opts.threads ?? 2);
    this.limits = Object.freeze({ ...DEFAULT_FUNCTION_LIMITS, ...(opts.limits ?? {}) });
  }

  /** Refuses code that does not compile (E_FUNCTION_SYNTAX with line and column) or exports no handler. */
  async check(code: string, now: number): Promise<void> {
    const reply = await this.#submit({ op: "check", code, input: "null", secrets: [], now, seed: 1, limits: this.limits });
    if (reply.ok) return;
    throw toError(reply, new Redactor([]));
  }

  /** Runs `handler(input)`; never throws for anything the function does. */
  async run(call: FunctionCall): Promise<FunctionOutcome> {
    let input: string;
    try {
      input = JSON.stringify(call.input ?? null);
    } catch {
      throw new HookwardenError("E_VALIDATION", 422, "The function's input is not JSON-serialisable");
    }
    const secrets: [string, string][] = [...(call.secrets ?? new Map<string, SecretValue>())].map(([k, v]) => [k, v.reveal()]);
    const reply = await this.#submit({ op: "run", code: call.code, input, secrets, now: call.now, seed: call.seed ?? 1, limits: this.limits });
    const values = new Map(secrets);
    const redactor = new Redactor(reply.secretsRead.map((n) => values.get(n) ?? "").filter((v) => v.length > 0));
    const lines = reply.console.map((l) => ({ level: l.level, text: redactor.redact(l.text) }));
    if (!reply.ok) return { ok: false, error: toError(reply, redactor), console: lines, consoleTruncated: reply.consoleTruncated, redactor };
    return { ok: true, result: JSON.parse(reply.output ?? "null") as unknown, console: lines, consoleTruncated: reply.consoleTruncated, redactor };
  }

  /** Starts the pool now instead of on the first call (the WASM module takes ~100 ms to load). */
  warm(): void {
    while (this.#slots.length < this.#threads) this.#slots.push(this.#spawn());
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const p of this.#queue.splice(0)) p.resolve(failure(p.id, "error", "the gateway is shutting down"));
    await Promise.all(this.#slots.splice(0).map(async (s) => {
      if (s.watchdog) clearTimeout(s.watchdog);
      s.busy?.resolve(failure(s.busy.id, "error", "the gateway is shutting down"));
      await s.worker.terminate();
    }));
  }

  #submit(job: Record<string, unknown>): Promise<WorkerReply> {
    if (this.#closed) return Promise.resolve(failure(0, "error", "the gateway is shutting down"));
    this.warm();
    return new Promise((resolve) => {
      const id = this.#nextId++;
      this.#queue.push({ id, job: { ...job, id }, resolve });
      this.#pump();
    });
  }

  #pump(): void {
    for (const slot of this.#slots) {
      if (!slot.ready || slot.busy) continue;
      const next = this.#queue.shift();
      if (!next) return;
      slot.busy = next;
      // QuickJS polls its interrupt handler between bytecodes, not inside a native builtin: a
      // single `Array.prototype.fill` over a sparse array near the memory cap ran 25 s with one
      // poll (measured), and a string bomb hitting the heap cap took 2 s of garbage collection to
      // fail. A thread silent past twice the cap plus 3 s is terminated and replaced (~150 ms to
      // load the WASM module again).
      slot.watchdog = setTimeout(() => this.#replace(slot, failure(next.id, "timeout", "interrupted")), this.limits.timeoutMs * 2 + 3000);
      slot.watchdog.unref();
      slot.worker.postMessage(next.job);
    }
  }

  #spawn(): Slot {
    const require = createRequire(import.meta.url);
    const worker = new Worker(SANDBOX_WORKER_CODE, {
      eval: true,
      workerData: {
        core: require.resolve("quickjs-emscripten-core"),
        variant: require.resolve("@jitl/quickjs-wasmfile-release-sync"),
        memoryBytes: this.limits.memoryBytes,
      },
      // The WASM heap lives in the thread's own memory; V8's heap here only holds messages.
      resourceLimits: { maxOldGenerationSizeMb: 64 + Math.ceil(this.limits.memoryBytes / 1048576) * 4 },
      stdout: true,
      stderr: true,
    });
    worker.unref();
    const slot: Slot = { worker, ready: false, busy: undefined, watchdog: undefined };
    worker.on("message", (msg: WorkerReply | { ready: true }) => {
      if ("ready" in msg) {
        slot.ready = true;
      } else if (slot.busy && msg.id === slot.busy.id) {
        const done = slot.busy;
        slot.busy = undefined;
        if (slot.watchdog) clearTimeout(slot.watchdog);
        done.resolve(msg);
      }
      this.#pump();
    });
    const lost = () => this.#replace(slot, failure(slot.busy?.id ?? 0, "error", "the sandbox thread stopped"));
    worker.on("error", lost);
    worker.on("exit", lost);
    return slot;
  }

  #replace(slot: Slot, reply: WorkerReply): void {
    const i = this.#slots.indexOf(slot);
    if (i < 0) return;
    this.#slots.splice(i, 1);
    if (slot.watchdog) clearTimeout(slot.watchdog);
    const busy = slot.busy;
    slot.busy = undefined;
    slot.worker.removeAllListeners("exit");
    void slot.worker.terminate();
    busy?.resolve(reply);
    if (!this.#closed) {
      this.#slots.push(this.#spawn());
      this.#pump();
    }
  }
}

function failure(id: number, kind: NonNullable<WorkerReply["kind"]>, message: string): WorkerReply {
  return { id, ok: false, kind, name: "Error", message, console: [], consoleTruncated: false, secretsRead: [] };
}

function toError(reply: WorkerReply, redactor: Redactor): HookwardenError {
  const kind = reply.kind ?? "error";
  const code = CODES[kind];
  const where = reply.line !== undefined ? ` (line ${reply.line}, column ${reply.column ?? 0})` : "";
  const message = redactor.redact(`${reply.name ?? "Error"}: ${(reply.message ?? "").slice(0, 500)}`);
  const detail =
    kind === "timeout" ? "The function ran past its CPU-time limit"
    : kind === "memory" ? "The function ran out of memory"
    : `${message}${where}`;
  const err = new HookwardenError(code, 422, detail, kind === "syntax" ? {
    validation: [{ loc: ["body", "code"], msg: `${message}${where}`, type: "value_error.syntax" }],
  } : {});
  if (reply.line !== undefined) Object.assign(err, { line: reply.line, column: reply.column ?? 0 });
  return err;
}
