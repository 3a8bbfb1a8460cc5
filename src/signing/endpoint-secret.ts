import { generateKeyPairSync, randomBytes } from "node:crypto";
import { HookwardenError } from "../errors/index.js";
import { SecretValue } from "../vault/secret-value.js";
import { ed25519FromSeed, type SigningKey } from "./standard-webhooks.js";

export type SignatureScheme = "hmac-sha256" | "ed25519" | "none";

/** Svix and Standard Webhooks generate 24 random bytes; we use 32 (a full SHA-256 block's key). */
const GENERATED_BYTES = 32;
const MIN_KEY_BYTES = 16;
const MIN_BITS_PER_BYTE = 3;

/**
 * Words that show a human chose the "random" bytes. Checked in the decoded bytes case-insensitively;
 * in the secret's base64 text only words of 6+ characters in the casings people type (`password`,
 * `Password`, `PASSWORD`): random base64 holds "test" or "admin" in some casing in about 1 of
 * 33,000 secrets (61 of 2,000,000 random Svix-format secrets measured), which refused real secrets.
 */
const COMMON_WORDS = [
  "password", "passwd", "secret", "webhook", "changeme", "letmein", "qwerty", "admin", "welcome",
  "default", "example", "test", "123456", "abcdef", "iloveyou", "monkey", "dragon", "master",
];

export function generateSecret(scheme: Exclude<SignatureScheme, "none">): SecretValue {
  if (scheme === "hmac-sha256") return new SecretValue(`whsec_${randomBytes(GENERATED_BYTES).toString("base64")}`);
  const { privateKey } = generateKeyPairSync("ed25519");
  const der = privateKey.export({ format: "der", type: "pkcs8" });
  return new SecretValue(`whsk_${der.subarray(der.length - 32).toString("base64")}`);
}

function shannonBitsPerByte(bytes: Buffer): number {
  const counts = new Map<number, number>();
  for (const b of bytes) counts.set(b, (counts.get(b) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) {
    const p = n / bytes.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/**
 * Checks a secret a user supplied. It must be `whsec_` + base64 (the prefix may be omitted, as
 * Svix allows) or `whsk_` + base64 of an ed25519 seed, hold at least 16 bytes, look random
 * (at least 3 bits of entropy per byte: 16 random bytes score ~3.9, "passwordpassword" 2.6) and
 * contain no common word. Returns the scheme the secret implies.
 */
export function checkCustomSecret(text: string, loc: string[] = ["body", "secret"]): { scheme: Exclude<SignatureScheme, "none">; secret: SecretValue } {
  const scheme = text.startsWith("whsk_") ? "ed25519" : "hmac-sha256";
  const body = text.replace(/^(whsec_|whsk_)/, "");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body) || body.length % 4 !== 0) {
    throw HookwardenError.invalidField(loc, "Secrets are base64, optionally prefixed with whsec_ (HMAC) or whsk_ (ed25519)", "E_SECRET_FORMAT");
  }
  const key = Buffer.from(body, "base64");
  if (scheme === "ed25519") {
    if (key.length !== 32 && key.length !== 64) {
      throw HookwardenError.invalidField(loc, "An ed25519 secret (whsk_) is base64 of a 32-byte seed", "E_SECRET_FORMAT");
    }
  } else if (key.length < MIN_KEY_BYTES) {
    throw HookwardenError.invalidField(loc, `Secrets must hold at least ${MIN_KEY_BYTES} bytes (128 bits) of key material`, "E_SECRET_TOO_SHORT");
  }
  const lowerBytes = key.toString("latin1").toLowerCase();
  const typed = (w: string) => [w, w.toUpperCase(), w.charAt(0).toUpperCase() + w.slice(1)].some((v) => body.includes(v));
  const word = COMMON_WORDS.find((w) => lowerBytes.includes(w) || (w.length >= 6 && typed(w)));
  if (word !== undefined || shannonBitsPerByte(key.subarray(0, 32)) < MIN_BITS_PER_BYTE) {
    throw HookwardenError.invalidField(loc, "This secret is too predictable: use random bytes (or omit it and let Hookwarden generate one)", "E_SECRET_WEAK");
  }
  return { scheme, secret: new SecretValue(`${scheme === "ed25519" ? "whsk_" : "whsec_"}${body}`) };
}

/** Turns a stored secret's text into the key the signer uses. */
export function signingKeyFrom(secret: SecretValue): SigningKey {
  const text = secret.reveal();
  if (text.startsWith("whsk_")) {
    const raw = Buffer.from(text.slice(5), "base64");
    return { scheme: "ed25519", key: ed25519FromSeed(raw.subarray(0, 32)) };
  }
  return { scheme: "hmac-sha256", key: Buffer.from(text.replace(/^whsec_/, ""), "base64") };
}
