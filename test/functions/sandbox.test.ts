import { afterAll, describe, expect, it } from "vitest";
import { FunctionRunner } from "../../src/functions/runner.js";
import { SecretValue } from "../../src/vault/secret-value.js";

const runner = new FunctionRunner({ threads: 2, limits: { timeoutMs: 300 } });
afterAll(() => runner.close());

const NOW = Date.UTC(2026, 0, 2, 3, 4, 5);

async function run(code: string, input: unknown = { n: 1 }, secrets?: Map<string, SecretValue>) {
  return runner.run({ code, input, now: NOW, ...(secrets ? { secrets } : {}) });
}

async function failure(code: string): Promise<{ code: string; message: string }> {
  const out = await run(code);
  if (out.ok) throw new Error(`expected a failure, got ${JSON.stringify(out.result)}`);
  return { code: out.error.code, message: out.error.message };
}

describe("function sandbox (QuickJS in WebAssembly, worker threads)", () => {
  it("runs `export default function handler(input)` on a copy of the input and returns its JSON result", async () => {
    const out = await run("export default function handler(req) { req.n += 1; return { n: req.n, seen: typeof req }; }", { n: 41 });
    expect(out.ok && out.result).toEqual({ n: 42, seen: "object" });
  });

  it("accepts Svix's shape as a named export and async handlers", async () => {
    const a = await run("export function handler(webhook) { webhook.payload.x = 1; return webhook; }", { payload: {} });
    expect(a.ok && a.result).toEqual({ payload: { x: 1 } });
    const b = await run("export default async function handler(x) { await null; return x.n * 2; }", { n: 4 });
    expect(b.ok && b.result).toBe(8);
  });

  it("is deterministic: Date is the given instant, Math.random is seeded", async () => {
    const code = "export default () => ({ now: Date.now(), iso: new Date().toISOString(), r: [Math.random(), Math.random()] })";
    const a = await run(code);
    const b = await run(code);
    expect(a.ok && (a.result as { now: number }).now).toBe(NOW);
    expect(a.ok && (a.result as { iso: string }).iso).toBe(new Date(NOW).toISOString());
    expect(a.ok && b.ok && a.result).toEqual(b.ok && b.result);
  });

  it("captures console output (bounded) and masks every secret value read, in console, errors and results", async () => {
    const secrets = new Map([["API_KEY", new SecretValue("sk_live_abcdef123456")]]);
    const out = await run(
      "export default function handler() { const k = secrets.get('API_KEY'); console.log('key', k, { k }); console.info(encodeURIComponent(k + '/')); return { header: 'Bearer ' + k, missing: secrets.get('NOPE') ?? null }; }",
      {},
      secrets,
    );
    expect(out.ok).toBe(true);
    expect(out.console.map((l) => l.text)).toEqual(["key ****** {\"k\":\"******\"}", "******%2F"]);
    // The result goes to a destination (that is what the secret is for); the caller masks it for display.
    expect(out.ok && out.result).toEqual({ header: "Bearer sk_live_abcdef123456", missing: null });
    expect(out.redactor.redact(JSON.stringify(out.ok && out.result))).not.toContain("sk_live");
    const thrown = await run("export default function handler() { throw new Error('bad key ' + secrets.get('API_KEY')); }", {}, secrets);
    expect(thrown.ok).toBe(false);
    expect(!thrown.ok && thrown.error.message).toBe("Error: bad key ****** (line 1, column 52)");
    const many = await run("export default function handler() { for (let i = 0; i < 1000; i++) console.log('x'.repeat(5000)); return 1; }");
    expect(many.console.length).toBeLessThanOrEqual(runner.limits.consoleLines);
    expect(many.consoleTruncated).toBe(true);
    expect(many.console.every((l) => l.text.length <= runner.limits.consoleLineChars)).toBe(true);
  });

  it("stops an infinite loop with E_FUNCTION_TIMEOUT", async () => {
    expect((await failure("export default function handler() { while (true) {} }")).code).toBe("E_FUNCTION_TIMEOUT");
    expect((await failure("while (true) {}\nexport default () => 1")).code).toBe("E_FUNCTION_TIMEOUT");
    expect((await failure("export default async function handler() { for (;;) await null; }")).code).toBe("E_FUNCTION_TIMEOUT");
  });

  it("stops memory bombs with E_FUNCTION_MEMORY (the WASM heap is capped, not only QuickJS's counter)", async () => {
    for (const code of [
      "export default function handler() { let a = []; for (;;) a.push(new Array(1e6).fill(0)); }",
      "export default function handler() { let a = []; for (let i = 0; ; i++) a.push('x'.repeat(1e6) + i); }",
      "export default function handler() { let a = []; for (;;) a.push(new Uint8Array(1e6)); }",
      "export default function handler() { return 'x'.repeat(1e9); }",
    ]) {
      expect((await failure(code)).code, code).toBe("E_FUNCTION_MEMORY");
    }
    // Sparse arrays allocate nothing per element: this one is stopped by the CPU cap instead.
    expect((await failure("export default function handler() { let a = []; for (;;) a.push(new Array(1e6)); }")).code).toMatch(/^E_FUNCTION_(TIMEOUT|MEMORY)$/);
    const after = await run("export default (x) => x.n");
    expect(after.ok && after.result).toBe(1);
  });

  it("reports a function that throws null on purpose as E_FUNCTION_ERROR, not as a memory bomb", async () => {
    // QuickJS throws null when it runs out of memory building its own error: a thread whose heap
    // never grew must not take a deliberate null for that.
    const fresh = new FunctionRunner({ threads: 1, limits: { timeoutMs: 300 } });
    try {
      const out = await fresh.run({ code: "export default function handler() { throw null; }", input: {}, now: NOW });
      expect(out.ok).toBe(false);
      if (!out.ok) expect([out.error.code, out.error.message]).toEqual(["E_FUNCTION_ERROR", "Error: the function threw null"]);
    } finally {
      await fresh.close();
    }
  });

  it("stops deep recursion with E_FUNCTION_ERROR (stack overflow), not a crash", async () => {
    const f = await failure("export default function handler() { const f = (n) => f(n + 1) + 1; return f(0); }");
    expect(f).toMatchObject({ code: "E_FUNCTION_ERROR" });
    expect(f.message).toContain("stack overflow");
  });

  it("offers no process, require, import() or host escape", async () => {
    const kinds = await run("export default () => [typeof process, typeof require, typeof module, typeof setTimeout, typeof fetch, typeof globalThis.constructor.constructor('return this')().process]");
    expect(kinds.ok && kinds.result).toEqual(["undefined", "undefined", "undefined", "undefined", "undefined", "undefined"]);
    expect((await failure("export default () => globalThis.constructor.constructor('return process')().env")).message).toContain("'process' is not defined");
    expect((await failure("export default async () => (await import('node:fs')).readFileSync('/etc/passwd', 'utf8')")).message).toContain("modules cannot be imported");
    expect((await failure("import fs from 'node:fs';\nexport default () => fs")).code).toBe("E_FUNCTION_ERROR");
    expect((await failure("export default () => this.constructor.constructor('return require')()('fs')")).code).toBe("E_FUNCTION_ERROR");
  });

  it("does not carry prototype tampering or globals into the next call", async () => {
    const a = await run("Object.prototype.polluted = 'yes'; Array.prototype.map = () => 'hijacked'; globalThis.leak = 1; JSON.stringify = () => '\"x\"';\nexport default () => ({}).polluted");
    // The result is encoded with the JSON captured before the module ran: tampering cannot forge it.
    expect(a.ok && a.result).toBe("yes");
    const b = await run("export default () => [({}).polluted ?? null, [1].map((x) => x + 1), typeof leak]");
    expect(b.ok && b.result).toEqual([null, [2], "undefined"]);
  });

  it("caps huge outputs with E_FUNCTION_OUTPUT_TOO_LARGE", async () => {
    const f = await failure("export default () => 'x'.repeat(2 * 1024 * 1024)");
    expect(f.code).toBe("E_FUNCTION_OUTPUT_TOO_LARGE");
  });

  it("refuses syntax errors with line and column, and modules without a handler", async () => {
    await expect(runner.check("export default function handler(x) {\n  return { a: 1\n}}}", NOW)).rejects.toMatchObject({ code: "E_FUNCTION_SYNTAX", line: 3, column: 3, status: 422 });
    await expect(runner.check("function handler(x) { return x }", NOW)).rejects.toMatchObject({ code: "E_FUNCTION_SYNTAX" });
    await expect(runner.check("export default (x) => x", NOW)).resolves.toBeUndefined();
  });

  it("answers other calls while one loops (the loop holds one sandbox thread only)", async () => {
    // A cap far beyond the test: the quick calls must finish while the loop is still running,
    // whatever the machine's load. Closing the pool then ends the loop.
    const slow = new FunctionRunner({ threads: 2, limits: { timeoutMs: 120_000 } });
    const order: string[] = [];
    const looping = slow.run({ code: "export default function handler() { while (true) {} }", input: null, now: NOW }).then((o) => {
      order.push(`loop:${o.ok ? "ok" : o.error.code}`);
    });
    for (let i = 0; i < 5; i++) {
      const quick = await slow.run({ code: "export default (x) => x.n + 1", input: { n: i }, now: NOW });
      order.push(`quick:${quick.ok ? String(quick.result) : quick.error.code}`);
    }
    await slow.close();
    await looping;
    expect(order).toEqual(["quick:1", "quick:2", "quick:3", "quick:4", "quick:5", "loop:E_FUNCTION_ERROR"]);
  });
});
