/**
 * The code of one sandbox thread (CommonJS, run with `eval` like the SQLite checkpointer, so it
 * needs no file of its own in dist/). It loads QuickJS compiled to WebAssembly once and runs each
 * call in a fresh QuickJS runtime + context: nothing a call does (a tampered `Object.prototype`, a
 * global, a leaked promise) survives into the next one, and the memory cap is per call.
 *
 * Why a thread at all: the sync WASM build runs a call to completion on the thread that calls it,
 * so on the gateway's event loop a function spinning until its CPU cap would stall every other
 * request for that long. In a worker thread only that call waits.
 *
 * Caps (all enforced inside QuickJS, the thread survives them):
 * - memory: the thread's WASM heap has a fixed maximum (see below) and `runtime.setMemoryLimit`
 *   refuses single huge allocations (both fail with InternalError "out of memory");
 * - stack: `runtime.setMaxStackSize` (InternalError "stack overflow");
 * - CPU: an interrupt handler QuickJS polls every few thousand bytecodes, comparing real elapsed
 *   time (`performance.now()`, monotonic) with a deadline set just before the module is evaluated.
 *   Not the gateway's injected clock: a frozen test clock would never stop a loop.
 *
 * Determinism: `Date.now()`/`new Date()` return the instant the caller passed in, `Math.random` is
 * a xorshift seeded by the caller; there is no timer, no I/O, no `require`, no module loader.
 */
export const SANDBOX_WORKER_CODE = String.raw`
"use strict";
const { parentPort, workerData } = require("node:worker_threads");
const core = require(workerData.core);
const variantModule = require(workerData.variant);
// The WASM heap is the real memory cap. This build of QuickJS has no malloc_usable_size, so its own
// limit (setMemoryLimit) counts 8 bytes per allocation and only refuses single allocations over
// the limit: 40 strings of 1 MB passed a 16 MB limit (measured). A heap whose maximum is fixed at
// 16 MB (what QuickJS needs to start) plus the per-call cap makes malloc fail instead, and QuickJS
// throws "out of memory" with the thread intact.
const HEAP_BASE_BYTES = 256 * 65536;
const heap = new WebAssembly.Memory({ initial: 256, maximum: 256 + Math.ceil(workerData.memoryBytes / 65536) });
const variant = core.newVariant(variantModule.default || variantModule, { wasmMemory: heap });

const PRELUDE = ${"`"}(function () {
  "use strict";
  const log = globalThis.__hw_log, get = globalThis.__hw_secret;
  delete globalThis.__hw_log;
  delete globalThis.__hw_secret;
  const parse = JSON.parse, stringify = JSON.stringify;
  const fmt = (v) => {
    if (typeof v === "string") return v;
    try { const s = stringify(v); return s === undefined ? String(v) : s; } catch (e) { return String(v); }
  };
  const mk = (level) => function () { const parts = []; for (let i = 0; i < arguments.length; i++) parts.push(fmt(arguments[i])); log(level, parts.join(" ")); };
  globalThis.console = Object.freeze({ log: mk("log"), info: mk("info"), warn: mk("warn"), error: mk("error"), debug: mk("debug") });
  globalThis.secrets = Object.freeze({ get: (name) => get(String(name)) });
  const NOW = __NOW__;
  let seed = __SEED__ | 0 || 1;
  Math.random = function () { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) / 4294967296; };
  const RealDate = Date;
  function FrozenDate() {
    if (!new.target) return new RealDate(NOW).toString();
    return arguments.length === 0 ? new RealDate(NOW) : new RealDate(...arguments);
  }
  FrozenDate.now = () => NOW;
  FrozenDate.UTC = RealDate.UTC;
  FrozenDate.parse = RealDate.parse;
  FrozenDate.prototype = RealDate.prototype;
  globalThis.Date = FrozenDate;
  const enc = (v) => { const t = stringify(v === undefined ? null : v); return t === undefined ? "null" : t; };
  return function run(f, s) {
    const r = f(parse(s));
    if (r !== null && typeof r === "object" && typeof r.then === "function") {
      const box = { done: false };
      r.then((v) => { box.done = true; box.out = enc(v); }, (e) => { box.done = true; box.failed = true; box.err = e; });
      return box;
    }
    return { done: true, out: enc(r) };
  };
})()${"`"};

let mod;
let poisoned = false;
const ready = core.newQuickJSWASMModuleFromVariant(variant).then((m) => { mod = m; });

function describe(ctx, handle) {
  let v;
  try { v = ctx.dump(handle); } catch (e) { v = undefined; }
  if (v && typeof v === "object") {
    const name = typeof v.name === "string" ? v.name : "Error";
    const message = typeof v.message === "string" ? v.message : String(v);
    const at = typeof v.stack === "string" ? /:(\d+):(\d+)/.exec(v.stack) : null;
    const out = { name, message };
    if (at) { out.line = Number(at[1]); out.column = Number(at[2]); }
    return out;
  }
  const out = { name: "Error", message: v === undefined ? "the function threw" : "the function threw " + String(v).slice(0, 200) };
  // Not sent to the gateway (not enumerable): only \`classify\` reads it.
  Object.defineProperty(out, "bare", { value: v === null || v === undefined });
  return out;
}

function classify(err, state) {
  if (state.timedOut) return "timeout";
  // Out of memory while building its own "out of memory" error, QuickJS throws null instead
  // (seen with a loop pushing sparse arrays: every run, at a 300 ms cap, with the heap at 32.0 of
  // its 33.5 MB maximum: the growth that failed asked for more than was left). Null with the heap
  // grown by more than half the per-call cap is taken for that; a function throwing null on
  // purpose is an error otherwise (unless an earlier call on this thread grew the heap that far).
  if (err.bare && heap.buffer.byteLength >= HEAP_BASE_BYTES + workerData.memoryBytes / 2) {
    err.name = "InternalError";
    err.message = "out of memory";
    return "memory";
  }
  if (err.name === "InternalError" && /out of memory/.test(err.message)) return "memory";
  if (err.name === "RangeError" && /out of memory|invalid array length|string too long/i.test(err.message)) return "memory";
  return "error";
}

function run(job) {
  const limits = job.limits;
  const state = { timedOut: false, console: [], consoleBytes: 0, consoleTruncated: false, secretsRead: new Set() };
  const secrets = new Map(job.secrets);
  const rt = mod.newRuntime();
  const handles = [];
  let ctx;
  const result = (r) => Object.assign(r, { console: state.console, consoleTruncated: state.consoleTruncated, secretsRead: [...state.secretsRead] });
  try {
    rt.setMemoryLimit(limits.memoryBytes);
    rt.setMaxStackSize(limits.stackBytes);
    rt.setModuleLoader(() => ({ error: new Error("modules cannot be imported in a function") }));
    let deadline = Infinity;
    rt.setInterruptHandler(() => {
      if (performance.now() > deadline) { state.timedOut = true; return true; }
      return false;
    });
    ctx = rt.newContext();
    const logFn = ctx.newFunction("__hw_log", (levelH, textH) => {
      const level = ctx.getString(levelH);
      let text = ctx.getString(textH);
      if (state.consoleTruncated) return;
      if (state.console.length >= limits.consoleLines || state.consoleBytes >= limits.consoleBytes) { state.consoleTruncated = true; return; }
      if (text.length > limits.consoleLineChars) { text = text.slice(0, limits.consoleLineChars); state.consoleTruncated = true; }
      state.consoleBytes += text.length;
      state.console.push({ level, text });
    });
    const secretFn = ctx.newFunction("__hw_secret", (nameH) => {
      const name = ctx.getString(nameH);
      const value = secrets.get(name);
      if (value === undefined) return undefined;
      state.secretsRead.add(name);
      return ctx.newString(value);
    });
    ctx.setProp(ctx.global, "__hw_log", logFn);
    ctx.setProp(ctx.global, "__hw_secret", secretFn);
    logFn.dispose();
    secretFn.dispose();

    // No compile-only pass: quickjs-emscripten reports a compiled module as a failure whose value
    // is undefined. Evaluating under the caps gives SyntaxError (with line and column) just the same.
    const prelude = ctx.evalCode(PRELUDE.replace("__NOW__", String(Number(job.now) || 0)).replace("__SEED__", String(Number(job.seed) || 1)), "prelude.js");
    if (prelude.error) { const e = describe(ctx, prelude.error); prelude.error.dispose(); return result({ ok: false, kind: "error", ...e }); }
    const runFn = prelude.value;
    handles.push(runFn);

    deadline = performance.now() + limits.timeoutMs;
    const evaluated = ctx.evalCode(job.code, "function.js", { type: "module" });
    if (evaluated.error) {
      const e = describe(ctx, evaluated.error);
      evaluated.error.dispose();
      return result({ ok: false, kind: e.name === "SyntaxError" ? "syntax" : classify(e, state), ...e });
    }
    let ns = evaluated.value;
    handles.push(ns);
    // A module with top-level await evaluates to a promise of its namespace.
    let st = ctx.getPromiseState(ns);
    if (st.type === "pending") {
      const pumped = rt.executePendingJobs();
      if (pumped.error) { const e = describe(ctx, pumped.error); pumped.error.dispose(); return result({ ok: false, kind: classify(e, state), ...e }); }
      st = ctx.getPromiseState(ns);
    }
    if (st.type === "rejected") { const e = describe(ctx, st.error); st.error.dispose(); return result({ ok: false, kind: classify(e, state), ...e }); }
    if (st.type === "pending") return result({ ok: false, kind: state.timedOut ? "timeout" : "error", name: "Error", message: "the module's top-level await never settled" });
    if (!st.notAPromise) { ns = st.value; handles.push(ns); }
    let handler = ctx.getProp(ns, "default");
    handles.push(handler);
    if (ctx.typeof(handler) !== "function") {
      handler = ctx.getProp(ns, "handler");
      handles.push(handler);
    }
    if (ctx.typeof(handler) !== "function") {
      return result({ ok: false, kind: job.op === "check" ? "syntax" : "error", name: "SyntaxError", message: "the module must export its handler: export default function handler(input) { ... }", line: 1, column: 1 });
    }
    if (job.op === "check") return result({ ok: true, output: null });

    const inputH = ctx.newString(job.input);
    handles.push(inputH);
    const called = ctx.callFunction(runFn, ctx.undefined, handler, inputH);
    if (called.error) { const e = describe(ctx, called.error); called.error.dispose(); return result({ ok: false, kind: classify(e, state), ...e }); }
    const box = called.value;
    handles.push(box);
    const read = (name) => { const h = ctx.getProp(box, name); try { return ctx.dump(h); } finally { h.dispose(); } };
    if (!read("done")) {
      const pumped = rt.executePendingJobs();
      if (pumped.error) { const e = describe(ctx, pumped.error); pumped.error.dispose(); return result({ ok: false, kind: classify(e, state), ...e }); }
      if (!read("done")) return result({ ok: false, kind: state.timedOut ? "timeout" : "error", name: "Error", message: "the handler's promise never settled" });
      if (read("failed")) {
        const errH = ctx.getProp(box, "err");
        const e = describe(ctx, errH);
        errH.dispose();
        return result({ ok: false, kind: classify(e, state), ...e });
      }
    }
    const outH = ctx.getProp(box, "out");
    handles.push(outH);
    if (ctx.typeof(outH) !== "string") return result({ ok: false, kind: "error", name: "TypeError", message: "the handler's result is not JSON-serialisable" });
    const lengthH = ctx.getProp(outH, "length");
    const length = ctx.getNumber(lengthH);
    lengthH.dispose();
    if (length > limits.outputChars) return result({ ok: false, kind: "output", name: "RangeError", message: "the handler's result is " + length + " characters of JSON, over the limit of " + limits.outputChars });
    return result({ ok: true, output: ctx.getString(outH) });
  } catch (err) {
    const message = err && err.message ? String(err.message) : String(err);
    if (state.timedOut) return result({ ok: false, kind: "timeout", name: "InternalError", message: "interrupted" });
    if (/out of memory|memory access out of bounds/i.test(message)) return result({ ok: false, kind: "memory", name: "InternalError", message: "out of memory" });
    poisoned = true;
    return result({ ok: false, kind: "error", name: "Error", message: "the sandbox failed: " + message.slice(0, 200) });
  } finally {
    for (const h of handles.reverse()) { try { if (h.alive) h.dispose(); } catch (e) { poisoned = true; } }
    try { if (ctx) ctx.dispose(); rt.dispose(); } catch (e) { poisoned = true; }
  }
}

parentPort.on("message", (job) => {
  ready.then(() => {
    let out;
    try { out = run(job); } catch (err) { poisoned = true; out = { ok: false, kind: "error", name: "Error", message: "the sandbox failed", console: [], consoleTruncated: false, secretsRead: [] }; }
    out.id = job.id;
    parentPort.postMessage(out);
    // A runtime that could not be torn down cleanly may have corrupted the WASM heap: start over.
    if (poisoned) process.exit(70);
  }, (err) => {
    parentPort.postMessage({ id: job.id, ok: false, kind: "error", name: "Error", message: "the sandbox could not start: " + String(err && err.message || err), console: [], consoleTruncated: false, secretsRead: [] });
    process.exit(70);
  });
});
ready.then(() => parentPort.postMessage({ ready: true }), () => {});
`;
