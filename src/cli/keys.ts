import { randomBytes } from "node:crypto";
import { appendFileSync, closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config/index.js";
import { HookwardenError } from "../errors/index.js";
import { resealAll, type RotationReport } from "../keys/rotate.js";
import { createLogger } from "../logger/index.js";
import { lockDataDir } from "../server/lock.js";
import { openStore } from "../store/index.js";
import { Keyring } from "../vault/envelope.js";
import { loadKeyring, NEXT_KEY_FILE, PREVIOUS_KEYS_FILE } from "../vault/keyring.js";
import { decodeMasterKey, loadMasterKey, MASTER_KEY_FILE } from "../vault/master-key.js";
import { SecretValue } from "../vault/secret-value.js";

export { NEXT_KEY_FILE };

function summary(reports: RotationReport[]): string {
  return reports.map((r) => `  ${r.table}.${r.column}: ${r.resealed} re-sealed, ${r.alreadyCurrent} already under the current key`).join("\n");
}

/**
 * `hookwarden keys rotate`: re-seals every stored secret (vault values, signing secrets, endpoint
 * headers) under a new master key. Safe to interrupt: run it again and it carries on.
 *
 * - Environment keys: first set `HOOKWARDEN_MASTER_KEY` to the new key and
 *   `HOOKWARDEN_MASTER_KEY_PREVIOUS` to the old one (servers read both meanwhile), then run this.
 * - Key file (no `HOOKWARDEN_MASTER_KEY`): generates `master.key.next`, re-seals under it, keeps the
 *   old key in `master.key.previous` (older backups stay readable) and moves the new one into place.
 *   Stop the server first when it uses SQLite; the command refuses while the data dir is locked.
 */
export async function keysRotate(config: Config): Promise<void> {
  const logger = createLogger({ level: "warn", destination: process.stderr });
  const out = (s: string) => process.stderr.write(`${s}\n`);
  if (config.masterKey) {
    const keyring = loadKeyring(config, logger);
    const store = await openStore(config, logger);
    try {
      const reports = await resealAll(store.db, keyring);
      out(`Every stored secret is now sealed under the current master key:\n${summary(reports)}`);
      out("Once every node runs with the new key, remove HOOKWARDEN_MASTER_KEY_PREVIOUS (keep it while older backups matter).");
    } catch (err) {
      if (err instanceof HookwardenError && err.code === "E_MASTER_KEY") {
        throw new HookwardenError("E_MASTER_KEY", 500, `${err.message}: set HOOKWARDEN_MASTER_KEY_PREVIOUS to the key(s) the data was sealed with`);
      }
      throw err;
    } finally {
      await store.close();
    }
    return;
  }
  if (config.databaseUrl) {
    // Each node would hold its own key file and keep running on the old key: rows re-sealed
    // under the new one would become unreadable to them.
    throw new HookwardenError("E_CONFIG", 400, "With PostgreSQL, set HOOKWARDEN_MASTER_KEY (the same on every node) and rotate in environment mode; see README");
  }
  const unlock = lockDataDir(config.dataDir);
  try {
    const current = loadMasterKey({ masterKey: undefined, dataDir: config.dataDir, logger });
    const nextPath = join(config.dataDir, NEXT_KEY_FILE);
    if (!existsSync(nextPath)) {
      // On disk before any row is sealed under it: a crash that lost this file would lose every
      // re-sealed secret with it.
      const fd = openSync(nextPath, "wx", 0o600);
      try {
        writeSync(fd, `${randomBytes(32).toString("base64")}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } else out(`Resuming an interrupted rotation (${nextPath} exists).`);
    const next = decodeMasterKey(new SecretValue(readFileSync(nextPath, "utf8")));
    const previousPath = join(config.dataDir, PREVIOUS_KEYS_FILE);
    const older = existsSync(previousPath) ? loadKeyringFileKeys(previousPath) : [];
    const keyring = new Keyring(next, [current, ...older]);
    const store = await openStore(config, logger);
    let reports: RotationReport[];
    try {
      reports = await resealAll(store.db, keyring);
    } finally {
      await store.close();
    }
    if (!current.equals(next)) appendFileSync(previousPath, `${current.toString("base64")}\n`, { mode: 0o600 });
    renameSync(nextPath, join(config.dataDir, MASTER_KEY_FILE));
    out(`Rotated the master key in ${config.dataDir}:\n${summary(reports)}`);
    out(`The old key is kept in ${previousPath} so database backups taken before now stay readable; delete that file when they expire.`);
  } finally {
    unlock();
  }
}

function loadKeyringFileKeys(path: string): Buffer[] {
  return readFileSync(path, "utf8")
    .split(/\s+/)
    .filter(Boolean)
    .map((k) => decodeMasterKey(new SecretValue(k)));
}
