import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { HookwardenError } from "../errors/index.js";

export type BodyCipher = "aes-256-gcm" | "chacha20-poly1305" | "aes-256-cbc" | "aes-128-cbc";
export const BODY_CIPHERS: readonly BodyCipher[] = ["aes-256-gcm", "chacha20-poly1305", "aes-256-cbc", "aes-128-cbc"];

export const KEY_BYTES: Record<BodyCipher, number> = { "aes-256-gcm": 32, "chacha20-poly1305": 32, "aes-256-cbc": 32, "aes-128-cbc": 16 };
export const IV_BYTES: Record<BodyCipher, number> = { "aes-256-gcm": 12, "chacha20-poly1305": 12, "aes-256-cbc": 16, "aes-128-cbc": 16 };
const TAG_BYTES = 16;

export function isAead(cipher: BodyCipher): boolean {
  return cipher === "aes-256-gcm" || cipher === "chacha20-poly1305";
}

/** A vault secret holding a body-encryption key: base64 of exactly the cipher's key size. */
export function parseBodyKey(text: string, cipher: BodyCipher): Buffer {
  const key = Buffer.from(text.trim(), "base64");
  if (key.length !== KEY_BYTES[cipher]) {
    throw new HookwardenError("E_ENCRYPTION_INVALID", 422, `${cipher} needs a key of ${KEY_BYTES[cipher]} bytes, stored base64-encoded in the vault`);
  }
  return key;
}

/**
 * The IV for one delivery: random (required for AEAD ciphers, where a repeated nonce under one
 * key breaks confidentiality and authenticity), or all zeros for legacy CBC receivers that cannot
 * take an IV (flagged with a warning on the endpoint).
 */
export function newIv(cipher: BodyCipher, random: boolean): Buffer {
  return random ? randomBytes(IV_BYTES[cipher]) : Buffer.alloc(IV_BYTES[cipher]);
}

/**
 * Encrypts a rendered body. Returns base64 of the ciphertext; for AEAD ciphers the 16-byte tag is
 * appended (ciphertext ‖ tag, as WebCrypto and libsodium do). CBC uses PKCS#7 padding.
 */
export function encryptBody(cipher: BodyCipher, key: Buffer, iv: Buffer, plaintext: string | Buffer): string {
  const c = isAead(cipher)
    ? createCipheriv(cipher as "aes-256-gcm", key, iv, { authTagLength: TAG_BYTES })
    : createCipheriv(cipher, key, iv);
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  const out = isAead(cipher) ? Buffer.concat([ct, (c as ReturnType<typeof createCipheriv> & { getAuthTag(): Buffer }).getAuthTag()]) : ct;
  return out.toString("base64");
}

/** The inverse, for `hookwarden decrypt` and receivers written in Node. */
export function decryptBody(cipher: BodyCipher, key: Buffer, iv: Buffer, base64: string): Buffer {
  const raw = Buffer.from(base64.trim(), "base64");
  if (!isAead(cipher)) {
    const d = createDecipheriv(cipher, key, iv);
    return Buffer.concat([d.update(raw), d.final()]);
  }
  const d = createDecipheriv(cipher as "aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
  d.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
  return Buffer.concat([d.update(raw.subarray(0, raw.length - TAG_BYTES)), d.final()]);
}
