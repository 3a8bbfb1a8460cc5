import { createHmac, createPrivateKey, createPublicKey, sign as edSign, type KeyObject } from "node:crypto";

/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com, "Signature scheme"): the signed
 * content is `${webhook-id}.${webhook-timestamp}.${body}`; `v1,` is base64 HMAC-SHA256 under the
 * base64-decoded `whsec_` key, `v1a,` is base64 ed25519 under a `whsk_` key. Several signatures
 * are separated by spaces, which is how a rotation's overlap window sends old and new at once.
 */
export type SigningKey =
  | { scheme: "hmac-sha256"; key: Buffer }
  | { scheme: "ed25519"; key: KeyObject };

export function signedContent(msgId: string, timestampSeconds: number, body: string | Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${msgId}.${timestampSeconds}.`, "utf8"), typeof body === "string" ? Buffer.from(body, "utf8") : body]);
}

export function sign(key: SigningKey, content: Buffer): string {
  if (key.scheme === "hmac-sha256") return `v1,${createHmac("sha256", key.key).update(content).digest("base64")}`;
  return `v1a,${edSign(null, content, key.key).toString("base64")}`;
}

/** The `webhook-signature` header value for every active key. */
export function signatureHeader(keys: readonly SigningKey[], msgId: string, timestampSeconds: number, body: string | Buffer): string {
  const content = signedContent(msgId, timestampSeconds, body);
  return keys.map((k) => sign(k, content)).join(" ");
}

const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

/** An ed25519 private key from its 32-byte seed. */
export function ed25519FromSeed(seed: Buffer): KeyObject {
  return createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: "der", type: "pkcs8" });
}

/** `whpk_` + base64 of the raw 32-byte public key, for receivers to verify `v1a` signatures. */
export function ed25519PublicKeyText(privateKey: KeyObject): string {
  const der = createPublicKey(privateKey).export({ format: "der", type: "spki" });
  return `whpk_${der.subarray(der.length - 32).toString("base64")}`;
}
