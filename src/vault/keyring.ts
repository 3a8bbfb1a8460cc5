import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { HookwardenError } from "../errors/index.js";
import { Keyring } from "./envelope.js";
import { decodeMasterKey, loadMasterKey } from "./master-key.js";
import { SecretValue } from "./secret-value.js";

/** Where the master keys come from (the configuration's fields of these names). */
export interface KeySource {
  readonly masterKey?: SecretValue | undefined;
  readonly masterKeyPrevious?: SecretValue | undefined;
  readonly dataDir: string;
}

export const PREVIOUS_KEYS_FILE = "master.key.previous";
/** The key an in-progress `hookwarden keys rotate` re-seals under, until it replaces `master.key`. */
export const NEXT_KEY_FILE = "master.key.next";

function decodeList(text: string, source: string): Buffer[] {
  return text
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((k) => {
      try {
        return decodeMasterKey(new SecretValue(k));
      } catch {
        throw new HookwardenError("E_MASTER_KEY", 500, `${source} holds a value that is not a base64 32-byte key`);
      }
    });
}

/**
 * The current master key (environment or key file) plus older keys that may still have sealed
 * some rows: `HOOKWARDEN_MASTER_KEY_PREVIOUS` (comma-separated) in environment mode, or
 * `master.key.previous` next to the key file. New values are always sealed under the current key.
 * While a key-file rotation is unfinished, rows it already re-sealed are under `master.key.next`,
 * so that key is readable too (a server restarted mid-rotation would otherwise lose those rows).
 */
export function loadKeyring(config: KeySource, logger: Logger): Keyring {
  const current = loadMasterKey({ masterKey: config.masterKey, dataDir: config.dataDir, logger });
  let previous: Buffer[] = [];
  if (config.masterKey) {
    if (config.masterKeyPrevious) previous = decodeList(config.masterKeyPrevious.reveal(), "HOOKWARDEN_MASTER_KEY_PREVIOUS");
  } else {
    const path = join(config.dataDir, PREVIOUS_KEYS_FILE);
    if (existsSync(path)) previous = decodeList(readFileSync(path, "utf8"), path);
    const next = join(config.dataDir, NEXT_KEY_FILE);
    if (existsSync(next)) previous.push(...decodeList(readFileSync(next, "utf8"), next));
  }
  return new Keyring(current, previous);
}
