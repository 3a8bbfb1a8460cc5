import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../config/index.js";
import { HookwardenError } from "../errors/index.js";
import { createLogger } from "../logger/index.js";
import { Keyring, keyId } from "./envelope.js";
import { loadKeyring, NEXT_KEY_FILE, PREVIOUS_KEYS_FILE } from "./keyring.js";

const logger = createLogger({ level: "silent" });
const AAD = "vault:app_1:TOKEN";
const b64 = (k: Buffer) => k.toString("base64");
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "hookwarden-keyring-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("loadKeyring with HOOKWARDEN_MASTER_KEY", () => {
  it("seals under the current key and opens values sealed under any previous key", () => {
    const [cur, p1, p2] = [randomBytes(32), randomBytes(32), randomBytes(32)];
    const ring = loadKeyring(loadConfig({ dataDir: tempDir(), masterKey: b64(cur), masterKeyPrevious: ` ${b64(p1)}, ${b64(p2)} ` }, {}), logger);
    expect(ring.currentKid).toBe(keyId(cur));
    for (const k of [p1, p2]) expect(ring.openString(new Keyring(k).seal("old", AAD), AAD)).toBe("old");
    expect(new Keyring(cur).openString(ring.seal("new", AAD), AAD)).toBe("new");
  });

  it("ignores key files in the data dir", () => {
    const dir = tempDir();
    const stray = randomBytes(32);
    writeFileSync(join(dir, PREVIOUS_KEYS_FILE), b64(stray));
    const ring = loadKeyring(loadConfig({ dataDir: dir, masterKey: b64(randomBytes(32)) }, {}), logger);
    expect(() => ring.open(new Keyring(stray).seal("x", AAD), AAD)).toThrow(HookwardenError);
  });

  it("refuses a previous key that is not base64 of 32 bytes, without printing it", () => {
    const bad = b64(randomBytes(16));
    const load = () => loadKeyring(loadConfig({ dataDir: tempDir(), masterKey: b64(randomBytes(32)), masterKeyPrevious: bad }, {}), logger);
    expect(load).toThrow(/HOOKWARDEN_MASTER_KEY_PREVIOUS holds a value that is not a base64 32-byte key/);
    try {
      load();
    } catch (err) {
      expect((err as HookwardenError).code).toBe("E_MASTER_KEY");
      expect((err as Error).message).not.toContain(bad);
    }
  });
});

describe("loadKeyring with a key file", () => {
  it("creates master.key on first use and returns the same key afterwards", () => {
    const dir = tempDir();
    const config = loadConfig({ dataDir: dir }, {});
    const first = loadKeyring(config, logger);
    const key = Buffer.from(readFileSync(join(dir, "master.key"), "utf8").trim(), "base64");
    expect(first.currentKid).toBe(keyId(key));
    expect(loadKeyring(config, logger).currentKid).toBe(first.currentKid);
  });

  it("opens values under keys in master.key.previous and, mid-rotation, master.key.next", () => {
    const dir = tempDir();
    const config = loadConfig({ dataDir: dir }, {});
    const current = loadKeyring(config, logger).currentKid;
    const [old1, old2, next] = [randomBytes(32), randomBytes(32), randomBytes(32)];
    writeFileSync(join(dir, PREVIOUS_KEYS_FILE), `${b64(old1)}\n${b64(old2)}\n`);
    writeFileSync(join(dir, NEXT_KEY_FILE), `${b64(next)}\n`);
    const ring = loadKeyring(config, logger);
    for (const k of [old1, old2, next]) expect(ring.openString(new Keyring(k).seal(`v-${keyId(k)}`, AAD), AAD)).toBe(`v-${keyId(k)}`);
    // New values still go under master.key until the rotation moves the next key into place.
    expect(ring.currentKid).toBe(current);
    expect(ring.seal("x", AAD).split(":")[1]).toBe(current);
  });

  it("refuses a corrupt master.key.previous naming the file", () => {
    const dir = tempDir();
    writeFileSync(join(dir, PREVIOUS_KEYS_FILE), "not-a-key\n");
    expect(() => loadKeyring(loadConfig({ dataDir: dir }, {}), logger)).toThrow(/master\.key\.previous holds a value that is not a base64 32-byte key/);
  });
});
