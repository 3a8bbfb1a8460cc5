import { createCipheriv, createDecipheriv, createHash } from "node:crypto";
import { HookwardenError } from "../errors/index.js";
import { RandomPool } from "../ids/random-pool.js";

const PREFIX = "hw1";
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Nonces come from a pool: `randomBytes` per seal was 3.7% of the gateway's busy time under ingest. */
const nonces = new RandomPool();

/** The key id written into every ciphertext, so rotation knows which key sealed a row. */
export function keyId(key: Buffer): string {
  return createHash("sha256").update("hookwarden-master-key-id:").update(key).digest("hex").slice(0, 12);
}

/**
 * AES-256-GCM under the master key, a fresh 96-bit nonce per write (NIST SP 800-38D §8.2.2: random
 * nonces are safe far beyond the number of rows we write under one key), and `aad` binding the
 * ciphertext to its row: a value copied into another row fails to open.
 *
 * Format: `hw1:<kid>:<base64(nonce | ciphertext | tag)>`.
 */
export class Keyring {
  readonly #keys = new Map<string, Buffer>();
  readonly currentKid: string;

  constructor(current: Buffer, previous: Buffer[] = []) {
    if (current.length !== 32) throw new HookwardenError("E_MASTER_KEY", 500, "Master key must be 32 bytes");
    this.currentKid = keyId(current);
    this.#keys.set(this.currentKid, current);
    for (const k of previous) {
      if (k.length !== 32) throw new HookwardenError("E_MASTER_KEY", 500, "Previous master keys must be 32 bytes");
      this.#keys.set(keyId(k), k);
    }
  }

  /** Seals `plaintext`; given as parts, their concatenation (without copying them into one). */
  seal(plaintext: string | Buffer | readonly Buffer[], aad: string): string {
    const key = this.#keys.get(this.currentKid)!;
    const nonce = nonces.take(NONCE_BYTES);
    const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(aad, "utf8"));
    const out: Buffer[] = [nonce];
    if (typeof plaintext === "string" || Buffer.isBuffer(plaintext)) out.push(cipher.update(plaintext));
    else for (const part of plaintext) out.push(cipher.update(part));
    out.push(cipher.final(), cipher.getAuthTag());
    return `${PREFIX}:${this.currentKid}:${Buffer.concat(out).toString("base64")}`;
  }

  open(sealed: string, aad: string): Buffer {
    const [prefix, kid, body] = sealed.split(":");
    if (prefix !== PREFIX || kid === undefined || body === undefined) {
      throw new HookwardenError("E_MASTER_KEY", 500, "Stored value is not a Hookwarden ciphertext");
    }
    const key = this.#keys.get(kid);
    if (!key) throw new HookwardenError("E_MASTER_KEY", 500, `No master key with id ${kid} is loaded`);
    const raw = Buffer.from(body, "base64");
    if (raw.length < NONCE_BYTES + TAG_BYTES) {
      throw new HookwardenError("E_MASTER_KEY", 500, "Stored ciphertext is truncated");
    }
    const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(aad, "utf8"));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES)), decipher.final()]);
    } catch (cause) {
      throw new HookwardenError("E_MASTER_KEY", 500, "Stored ciphertext failed authentication", { cause });
    }
  }

  openString(sealed: string, aad: string): string {
    return this.open(sealed, aad).toString("utf8");
  }

  /** True when the value was sealed under a key other than the current one. */
  isStale(sealed: string): boolean {
    return sealed.split(":")[1] !== this.currentKid;
  }
}
