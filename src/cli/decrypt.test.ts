import { spawn } from "node:child_process";
import { createCipheriv, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { encryptBody, newIv, type BodyCipher } from "../endpoints/body-encryption.js";

const ROOT = new URL("../../", import.meta.url).pathname;
const BODY = '{"type":"call.started","caller":"+33 1 23 45 67 89","note":"é ✓"}';

interface Run {
  code: number | null;
  stdout: string;
  /** stderr without npm's own notices. */
  stderr: string;
}

/** `hookwarden decrypt` as a receiver runs it: key in the environment, body on stdin. */
function hookwarden(args: string[], env: Record<string, string>, stdin: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const { HOOKWARDEN_DECRYPT_KEY: _drop, ...inherited } = process.env;
    const child = spawn("npx", ["tsx", "src/cli/main.ts", ...args], { cwd: ROOT, env: { ...inherited, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill("SIGKILL"), 50_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err)
        .toString("utf8")
        .split("\n")
        .filter((l) => !/^npm (warn|notice)/.test(l))
        .join("\n")
        .trim();
      resolve({ code, stdout: Buffer.concat(out).toString("utf8"), stderr });
    });
    // The command may refuse (bad flag, no key) before reading stdin: a broken pipe is expected then.
    child.stdin.on("error", () => {});
    child.stdin.end(stdin);
  });
}

const KEY_SIZE: Record<BodyCipher, number> = { "aes-256-gcm": 32, "chacha20-poly1305": 32, "aes-256-cbc": 32, "aes-128-cbc": 16 };

function expectCleanFailure(r: Run, message: RegExp): void {
  expect(r.code, r.stderr).not.toBe(0);
  expect(r.stdout).toBe("");
  expect(r.stderr).toMatch(message);
  expect(r.stderr).toMatch(/^hookwarden: /);
  // One line for a person, not a stack trace.
  expect(r.stderr.split("\n"), r.stderr).toHaveLength(1);
  expect(r.stderr).not.toMatch(/\n\s+at |\.ts:\d+|Error:/);
}

// Each test starts `npx tsx`, which takes seconds on a loaded 2-core machine.
describe("hookwarden decrypt", { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "hookwarden-decrypt-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([["aes-256-gcm"], ["chacha20-poly1305"], ["aes-256-cbc"], ["aes-128-cbc"]] as [BodyCipher][])(
    "prints the plaintext of a %s body read from stdin",
    async (cipher) => {
      const key = randomBytes(KEY_SIZE[cipher]);
      const iv = newIv(cipher, true);
      const body = encryptBody(cipher, key, iv, BODY);
      const r = await hookwarden(["decrypt", "--cipher", cipher, "--iv", iv.toString("hex")], { HOOKWARDEN_DECRYPT_KEY: key.toString("base64") }, `${body}\n`);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(BODY);
    },
  );

  it("decrypts a body a receiver's own node:crypto code encrypted (AES-GCM, tag appended)", async () => {
    const key = randomBytes(32);
    const iv = randomBytes(12);
    const c = createCipheriv("aes-256-gcm", key, iv);
    const raw = Buffer.concat([c.update(BODY, "utf8"), c.final(), c.getAuthTag()]);
    const file = join(dir, "body.txt");
    writeFileSync(file, raw.toString("base64"));
    const keyFile = join(dir, "key.txt");
    writeFileSync(keyFile, key.toString("base64"));
    const r = await hookwarden(["decrypt", file, "--cipher", "aes-256-gcm", "--iv", iv.toString("hex"), "--key-file", keyFile], {}, "");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(BODY);
  });

  it("a wrong key exits non-zero with a clear message and no stack trace", async () => {
    const iv = newIv("aes-256-gcm", true);
    const body = encryptBody("aes-256-gcm", randomBytes(32), iv, BODY);
    const r = await hookwarden(["decrypt", "--cipher", "aes-256-gcm", "--iv", iv.toString("hex")], { HOOKWARDEN_DECRYPT_KEY: randomBytes(32).toString("base64") }, body);
    expectCleanFailure(r, /Could not decrypt: wrong key, IV or cipher, or the body was altered/);
  });

  it("an altered body exits non-zero without printing any plaintext", async () => {
    const key = randomBytes(32);
    const iv = newIv("chacha20-poly1305", true);
    const raw = Buffer.from(encryptBody("chacha20-poly1305", key, iv, BODY), "base64");
    raw[3] = raw[3]! ^ 0x01;
    const r = await hookwarden(["decrypt", "--cipher", "chacha20-poly1305", "--iv", iv.toString("hex")], { HOOKWARDEN_DECRYPT_KEY: key.toString("base64") }, raw.toString("base64"));
    expectCleanFailure(r, /Could not decrypt/);
  });

  it.each([
    ["a key of the wrong size", ["--cipher", "aes-256-cbc"], { HOOKWARDEN_DECRYPT_KEY: randomBytes(16).toString("base64") }, /aes-256-cbc needs a key of 32 bytes/],
    ["a missing key", ["--cipher", "aes-256-cbc"], {}, /Set HOOKWARDEN_DECRYPT_KEY/],
    ["an unknown cipher", ["--cipher", "rot13"], { HOOKWARDEN_DECRYPT_KEY: randomBytes(32).toString("base64") }, /--cipher must be one of aes-256-gcm, chacha20-poly1305, aes-256-cbc, aes-128-cbc/],
    ["a key file that cannot be read", ["--cipher", "aes-256-gcm", "--key-file", "/nonexistent/hookwarden.key"], {}, /Cannot read --key-file \(ENOENT\)/],
    ["a body file that cannot be read", ["/nonexistent/body.txt", "--cipher", "aes-256-gcm"], { HOOKWARDEN_DECRYPT_KEY: randomBytes(32).toString("base64") }, /Cannot read the body file \(ENOENT\)/],
  ] as [string, string[], Record<string, string>, RegExp][])("explains %s in one line", async (_what, args, env, message) => {
    expectCleanFailure(await hookwarden(["decrypt", ...args, "--iv", "00".repeat(16)], env, "AAAA"), message);
  });
});
