import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HookwardenError } from "../errors/index.js";
import { decodeMasterKey, loadMasterKey, MASTER_KEY_FILE } from "./master-key.js";
import { SecretValue } from "./secret-value.js";

function logCapture() {
  const stream = new PassThrough();
  const lines: { level: number; msg: string; path?: string; mode?: string }[] = [];
  stream.on("data", (c: Buffer) => {
    for (const l of c.toString("utf8").split("\n")) if (l.trim()) lines.push(JSON.parse(l));
  });
  return { logger: pino({ level: "info" }, stream), warnings: () => lines.filter((l) => l.level === 40) };
}

function expectMasterKeyError(fn: () => unknown): HookwardenError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(HookwardenError);
    expect((err as HookwardenError).code).toBe("E_MASTER_KEY");
    return err as HookwardenError;
  }
  throw new Error("expected E_MASTER_KEY");
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("decodeMasterKey (HOOKWARDEN_MASTER_KEY)", () => {
  it("decodes base64 of 32 bytes, with or without padding and surrounding whitespace", () => {
    const key = randomBytes(32);
    const b64 = key.toString("base64");
    expect(decodeMasterKey(new SecretValue(b64)).equals(key)).toBe(true);
    expect(decodeMasterKey(new SecretValue(b64.replace(/=+$/, ""))).equals(key)).toBe(true);
    expect(decodeMasterKey(new SecretValue(` ${b64}\n`)).equals(key)).toBe(true);
  });

  it.each([0, 1, 16, 24, 31, 33, 48, 64])("refuses base64 of %i bytes", (n) => {
    expectMasterKeyError(() => decodeMasterKey(new SecretValue(randomBytes(n).toString("base64"))));
  });

  it("refuses hex, text and a key with a corrupted character, without echoing the value", () => {
    const key = randomBytes(32);
    const b64 = key.toString("base64");
    const corrupted = `${b64.slice(0, 10)}*${b64.slice(11)}`;
    const bad = [key.toString("hex"), "correct horse battery staple", corrupted, `${b64}!`, "", "   "];
    for (const text of bad) {
      const err = expectMasterKeyError(() => decodeMasterKey(new SecretValue(text)));
      if (text.trim()) expect(err.message).not.toContain(text.trim());
    }
  });
});

describe("loadMasterKey", () => {
  let dir: string;
  let savedUmask: number;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "hookwarden-mk-"));
    // A permissive umask must not loosen the file's mode.
    savedUmask = process.umask(0o000);
  });
  afterEach(() => {
    process.umask(savedUmask);
    rmSync(dir, { recursive: true, force: true });
  });

  it("uses the environment key when set and writes no file", () => {
    const key = randomBytes(32);
    const { logger, warnings } = logCapture();
    const got = loadMasterKey({ masterKey: new SecretValue(key.toString("base64")), dataDir: dir, logger });
    expect(got.equals(key)).toBe(true);
    expect(existsSync(join(dir, MASTER_KEY_FILE))).toBe(false);
    expect(warnings()).toEqual([]);
  });

  it("refuses a bad environment key instead of falling back to the file", () => {
    writeFileSync(join(dir, MASTER_KEY_FILE), `${randomBytes(32).toString("base64")}\n`, { mode: 0o600 });
    const { logger } = logCapture();
    expectMasterKeyError(() => loadMasterKey({ masterKey: new SecretValue("too-short"), dataDir: dir, logger }));
  });

  it("generates a 0600 key file on first start, with a warning, and reuses it afterwards", async () => {
    const dataDir = join(dir, "nested", "data");
    const first = logCapture();
    const key = loadMasterKey({ masterKey: undefined, dataDir, logger: first.logger });
    await tick();

    const path = join(dataDir, MASTER_KEY_FILE);
    expect(key.length).toBe(32);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(Buffer.from(readFileSync(path, "utf8").trim(), "base64").equals(key)).toBe(true);
    expect(first.warnings()).toHaveLength(1);
    expect(first.warnings()[0]!.msg).toMatch(/generated a new master key file; back it up/);
    expect(first.warnings()[0]!.path).toBe(path);
    expect(JSON.stringify(first.warnings())).not.toContain(key.toString("base64"));

    const second = logCapture();
    const again = loadMasterKey({ masterKey: undefined, dataDir, logger: second.logger });
    await tick();
    expect(again.equals(key)).toBe(true);
    expect(second.warnings()).toEqual([]);
  });

  it("generates a different key for a different data directory", () => {
    const { logger } = logCapture();
    const a = loadMasterKey({ masterKey: undefined, dataDir: join(dir, "a"), logger });
    const b = loadMasterKey({ masterKey: undefined, dataDir: join(dir, "b"), logger });
    expect(a.equals(b)).toBe(false);
  });

  it("reads an existing key file written by an operator, and warns when others can read it", async () => {
    const key = randomBytes(32);
    const path = join(dir, MASTER_KEY_FILE);
    writeFileSync(path, `  ${key.toString("base64")}\r\n`);
    chmodSync(path, 0o644);
    const { logger, warnings } = logCapture();
    expect(loadMasterKey({ masterKey: undefined, dataDir: dir, logger }).equals(key)).toBe(true);
    await tick();
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]!.msg).toMatch(/readable by other users; chmod 600/);
    expect(warnings()[0]!.mode).toBe("644");
  });

  it("refuses a key file with bad contents and leaves the file untouched", () => {
    const key = randomBytes(32).toString("base64");
    const bad = [
      "",
      "not a key\n",
      randomBytes(16).toString("base64"),
      randomBytes(33).toString("base64"),
      randomBytes(32).toString("hex"),
      `${key.slice(0, 20)}*${key.slice(21)}`,
      `HOOKWARDEN_MASTER_KEY=${key}`,
    ];
    for (const contents of bad) {
      const path = join(dir, MASTER_KEY_FILE);
      writeFileSync(path, contents, { mode: 0o600 });
      const { logger } = logCapture();
      const err = expectMasterKeyError(() => loadMasterKey({ masterKey: undefined, dataDir: dir, logger }));
      expect(err.message).toContain(path);
      expect(readFileSync(path, "utf8")).toBe(contents);
    }
  });
});
