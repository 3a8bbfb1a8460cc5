import { linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Logger } from "pino";
import { HookwardenError } from "../errors/index.js";
import type { SecretValue } from "./secret-value.js";

export const MASTER_KEY_FILE = "master.key";

/** Decodes `HOOKWARDEN_MASTER_KEY` (base64 of exactly 32 bytes). */
export function decodeMasterKey(value: SecretValue): Buffer {
  const text = value.reveal().trim();
  const key = Buffer.from(text, "base64");
  if (key.length !== 32 || key.toString("base64").replace(/=+$/, "") !== text.replace(/=+$/, "")) {
    throw new HookwardenError("E_MASTER_KEY", 500, "HOOKWARDEN_MASTER_KEY must be the base64 encoding of 32 bytes");
  }
  return key;
}

/**
 * The master key never lives in the database. It comes from the environment or, for a zero-set-up
 * start, from a 0600 file in the data directory generated on first start (with a warning: that
 * file must be backed up, and every node sharing a PostgreSQL database needs the same key).
 */
export function loadMasterKey(opts: { masterKey: SecretValue | undefined; dataDir: string; logger: Logger }): Buffer {
  if (opts.masterKey) return decodeMasterKey(opts.masterKey);
  const path = join(opts.dataDir, MASTER_KEY_FILE);
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  let text: string;
  try {
    text = readFileSync(path, "utf8");
    const mode = statSync(path).mode & 0o777;
    if (mode & 0o077) {
      opts.logger.warn({ path, mode: mode.toString(8) }, "master key file is readable by other users; chmod 600 it");
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    text = randomBytes(32).toString("base64");
    // Written whole to a private temp file, then linked into place: link() fails if the key file
    // exists, so a second process starting at the same moment reads a complete key, never half.
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, `${text}\n`, { mode: 0o600 });
    try {
      linkSync(tmp, path);
      opts.logger.warn(
        { path },
        "generated a new master key file; back it up and keep it out of the database backups: without it no stored secret can be decrypted",
      );
    } catch (raceErr) {
      if ((raceErr as NodeJS.ErrnoException).code !== "EEXIST") throw raceErr;
      text = readFileSync(path, "utf8");
    } finally {
      unlinkSync(tmp);
    }
  }
  const key = Buffer.from(text.trim(), "base64");
  if (key.length !== 32) throw new HookwardenError("E_MASTER_KEY", 500, `${path} does not hold a base64 32-byte key`);
  return key;
}
