import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DIALECTS, TEST_PG_URL } from "../../test/helpers/dialects.js";
import { keyIdsInUse, readAllSealed, seedSealedRows } from "../../test/helpers/sealed-rows.js";
import { insertApp } from "../../test/helpers/store.js";
import { dropTestStorage } from "../../test/helpers/server.js";
import { FakeClock } from "../clock/index.js";
import { loadConfig, type Config, type ConfigInput } from "../config/index.js";
import type { Context } from "../context/index.js";
import { HookwardenError } from "../errors/index.js";
import { EventBus } from "../events/index.js";
import { resealAll } from "../keys/rotate.js";
import { createLogger } from "../logger/index.js";
import { JobQueue } from "../queue/job-queue.js";
import { openStore, type Dialect } from "../store/index.js";
import { Keyring, keyId } from "../vault/envelope.js";
import { loadKeyring } from "../vault/keyring.js";
import { keysRotate, NEXT_KEY_FILE } from "./keys.js";

const logger = createLogger({ level: "silent" });
const b64 = (k: Buffer) => k.toString("base64");
const fileKey = (dir: string, name: string) => Buffer.from(readFileSync(join(dir, name), "utf8").trim(), "base64");

interface Install {
  config: Config;
  input: Partial<ConfigInput>;
  dataDir: string;
  schema: string | undefined;
  dialect: Dialect;
}

const installs: Install[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const i of installs.splice(0)) await dropTestStorage(i.dialect, i.dataDir, i.schema);
});

function install(dialect: Dialect, extra: Partial<ConfigInput> = {}): Install {
  const dataDir = mkdtempSync(join(tmpdir(), "hookwarden-keys-"));
  const schema = dialect === "postgres" ? `hwt_${randomBytes(6).toString("hex")}` : undefined;
  const input: Partial<ConfigInput> = { dataDir, logLevel: "silent", ...(dialect === "postgres" ? { databaseUrl: TEST_PG_URL, databaseSchema: schema } : {}), ...extra };
  const i = { config: loadConfig(input, {}), input, dataDir, schema, dialect };
  installs.push(i);
  return i;
}

/** Opens the install's database with `keyring` and runs `fn` against a Context around it. */
async function withStore<T>(config: Config, keyring: Keyring, fn: (ctx: Context) => Promise<T>): Promise<T> {
  const store = await openStore(config, logger);
  try {
    return await fn({ config, clock: new FakeClock(), logger, store, queue: new JobQueue(store), keyring, events: new EventBus() });
  } finally {
    await store.close();
  }
}

async function seed(config: Config, keyring: Keyring): Promise<Map<string, string>> {
  return withStore(config, keyring, async (ctx) => {
    await seedSealedRows(ctx, [await insertApp(ctx.store.db, "a"), await insertApp(ctx.store.db, "b")], 12);
    return readAllSealed(ctx);
  });
}

/** Runs the command, returning what it told the operator on stderr. */
async function rotate(config: Config): Promise<string> {
  const lines: string[] = [];
  vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => (lines.push(String(chunk)), true));
  try {
    await keysRotate(config);
  } finally {
    vi.restoreAllMocks();
  }
  return lines.join("");
}

for (const dialect of DIALECTS) {
  describe(`hookwarden keys rotate, key file (${dialect})`, () => {
    // Key-file mode is for one SQLite node; with PostgreSQL every node needs the same key.
    if (dialect === "postgres") {
      it("refuses key-file rotation, pointing to environment mode", async () => {
        const { config, dataDir } = install(dialect);
        await seed(config, loadKeyring(config, logger));
        const keyA = fileKey(dataDir, "master.key");
        await expect(rotate(config)).rejects.toThrow(/HOOKWARDEN_MASTER_KEY/);
        expect(fileKey(dataDir, "master.key").equals(keyA)).toBe(true);
        expect(existsSync(join(dataDir, NEXT_KEY_FILE))).toBe(false);
      });
    } else {
    it("re-seals everything under a new master.key and keeps the old one in master.key.previous", async () => {
      const { config, dataDir } = install(dialect);
      const before = await seed(config, loadKeyring(config, logger));
      const keyA = fileKey(dataDir, "master.key");

      const said = await rotate(config);
      expect(said).toMatch(/vault_secrets\.value_enc: 5 re-sealed/);
      expect(said).not.toContain(b64(keyA));
      const keyB = fileKey(dataDir, "master.key");
      expect(keyB.length).toBe(32);
      expect(keyB.equals(keyA)).toBe(false);
      expect(readFileSync(join(dataDir, "master.key.previous"), "utf8").trim().split("\n")).toEqual([b64(keyA)]);
      expect(existsSync(join(dataDir, NEXT_KEY_FILE))).toBe(false);

      // Readable with the new key alone, every row under it; and the server's keyring is the new key.
      expect(await withStore(config, new Keyring(keyB), readAllSealed)).toEqual(before);
      const kids = await withStore(config, new Keyring(keyB), (ctx) => keyIdsInUse(ctx.store.db));
      for (const [col, set] of kids) expect(set, col).toEqual(new Set([keyId(keyB)]));
      expect(loadKeyring(config, logger).currentKid).toBe(keyId(keyB));

      // A second rotation keeps both older keys for old backups.
      await rotate(config);
      const keyC = fileKey(dataDir, "master.key");
      expect(readFileSync(join(dataDir, "master.key.previous"), "utf8").trim().split("\n")).toEqual([b64(keyA), b64(keyB)]);
      expect(await withStore(config, new Keyring(keyC), readAllSealed)).toEqual(before);
    });

    it("resumes an interrupted rotation with the key it had started, and a server restarted meanwhile reads every row", async () => {
      const { config, dataDir } = install(dialect);
      const before = await seed(config, loadKeyring(config, logger));
      const keyA = fileKey(dataDir, "master.key");
      const keyN = randomBytes(32);
      // What a killed `keys rotate` leaves behind: master.key.next, and some rows sealed under it.
      writeFileSync(join(dataDir, NEXT_KEY_FILE), `${b64(keyN)}\n`, { mode: 0o600 });
      await withStore(config, new Keyring(keyN, [keyA]), async (ctx) => {
        await expect(resealAll(ctx.store.db, ctx.keyring, (r) => {
          if (r.resealed > 0) throw new Error("killed");
        })).rejects.toThrow("killed");
        expect((await keyIdsInUse(ctx.store.db)).get("endpoint_secrets.secret_enc")).toEqual(new Set([keyId(keyN)]));
      });
      expect(await withStore(config, loadKeyring(config, logger), readAllSealed)).toEqual(before);

      const said = await rotate(config);
      expect(said).toMatch(/Resuming an interrupted rotation/);
      expect(said).toMatch(/endpoint_secrets\.secret_enc: 0 re-sealed, 12 already/);
      expect(fileKey(dataDir, "master.key").equals(keyN)).toBe(true);
      expect(readFileSync(join(dataDir, "master.key.previous"), "utf8").trim()).toBe(b64(keyA));
      expect(existsSync(join(dataDir, NEXT_KEY_FILE))).toBe(false);
      expect(await withStore(config, new Keyring(keyN), readAllSealed)).toEqual(before);
    });

    }

    it("with HOOKWARDEN_MASTER_KEY, re-seals under it using HOOKWARDEN_MASTER_KEY_PREVIOUS", async () => {
      const keyA = randomBytes(32);
      const keyB = randomBytes(32);
      const old = install(dialect, { masterKey: b64(keyA) });
      const before = await seed(old.config, new Keyring(keyA));
      const config = loadConfig({ ...old.input, masterKey: b64(keyB), masterKeyPrevious: `${b64(randomBytes(32))},${b64(keyA)}` }, {});
      await rotate(config);
      expect(await withStore(config, new Keyring(keyB), readAllSealed)).toEqual(before);
      expect(existsSync(join(old.dataDir, "master.key"))).toBe(false);

      // Without the previous key it says what to set, instead of a bare decryption failure.
      const lost = loadConfig({ ...old.input, masterKey: b64(randomBytes(32)) }, {});
      await expect(rotate(lost)).rejects.toThrow(/set HOOKWARDEN_MASTER_KEY_PREVIOUS/);
      expect(await withStore(config, new Keyring(keyB), readAllSealed)).toEqual(before);
    });
  });
}

describe("hookwarden keys rotate on a SQLite data dir in use", () => {
  it("refuses while another process holds the data dir, touching no key file", async () => {
    const { config, dataDir } = install("sqlite");
    await seed(config, loadKeyring(config, logger));
    const keyA = readFileSync(join(dataDir, "master.key"), "utf8");
    writeFileSync(join(dataDir, "hookwarden.pid"), String(process.ppid));
    const err = await rotate(config).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HookwardenError);
    expect((err as Error).message).toMatch(/Another hookwarden/);
    expect(readFileSync(join(dataDir, "master.key"), "utf8")).toBe(keyA);
    expect(existsSync(join(dataDir, NEXT_KEY_FILE))).toBe(false);
    expect(existsSync(join(dataDir, "master.key.previous"))).toBe(false);
  });
});
