import { createDecipheriv, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { HookwardenError } from "../errors/index.js";
import { BODY_CIPHERS, encryptBody, newIv, parseBodyKey, type BodyCipher } from "./body-encryption.js";

const BODY = JSON.stringify({ type: "call.started", caller: "+33 1 23 45 67 89", note: "é ✓ 秘密" });

/**
 * What a receiver writes with nothing but node:crypto and the documentation: the body is base64;
 * for AEAD ciphers its last 16 bytes are the tag; CBC is PKCS#7-padded.
 */
function receiverDecrypts(cipher: BodyCipher, key: Buffer, ivHex: string, base64Body: string): string {
  const raw = Buffer.from(base64Body, "base64");
  const iv = Buffer.from(ivHex, "hex");
  if (cipher === "aes-256-gcm" || cipher === "chacha20-poly1305") {
    const d = createDecipheriv(cipher as "aes-256-gcm", key, iv, { authTagLength: 16 });
    d.setAuthTag(raw.subarray(raw.length - 16));
    return Buffer.concat([d.update(raw.subarray(0, raw.length - 16)), d.final()]).toString("utf8");
  }
  const d = createDecipheriv(cipher, key, iv);
  return Buffer.concat([d.update(raw), d.final()]).toString("utf8");
}

const KEY_SIZE: Record<BodyCipher, number> = { "aes-256-gcm": 32, "chacha20-poly1305": 32, "aes-256-cbc": 32, "aes-128-cbc": 16 };
const IV_SIZE: Record<BodyCipher, number> = { "aes-256-gcm": 12, "chacha20-poly1305": 12, "aes-256-cbc": 16, "aes-128-cbc": 16 };
const AEAD = new Set<BodyCipher>(["aes-256-gcm", "chacha20-poly1305"]);

describe.each(BODY_CIPHERS.map((c) => [c]))("%s", (cipher) => {
  const keyText = randomBytes(KEY_SIZE[cipher]).toString("base64");
  const key = parseBodyKey(keyText, cipher);

  it("produces base64 that plain node:crypto decrypts with the vault key and the IV", () => {
    const iv = newIv(cipher, true);
    const out = encryptBody(cipher, key, iv, BODY);
    expect(out).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
    expect(Buffer.from(out, "base64").toString("latin1")).not.toContain("call.started");
    expect(receiverDecrypts(cipher, Buffer.from(keyText, "base64"), iv.toString("hex"), out)).toBe(BODY);
    const padded = Math.ceil((Buffer.byteLength(BODY) + 1) / 16) * 16;
    expect(Buffer.from(out, "base64").length).toBe(AEAD.has(cipher) ? Buffer.byteLength(BODY) + 16 : padded);
  });

  it("encrypts an empty body too", () => {
    const iv = newIv(cipher, true);
    expect(receiverDecrypts(cipher, key, iv.toString("hex"), encryptBody(cipher, key, iv, ""))).toBe("");
  });

  it(`uses a fresh random IV of ${IV_SIZE[cipher]} bytes for every delivery`, () => {
    const ivs = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const iv = newIv(cipher, true);
      expect(iv.length).toBe(IV_SIZE[cipher]);
      ivs.add(iv.toString("hex"));
    }
    expect(ivs.size).toBe(50);
    const a = newIv(cipher, true);
    const b = newIv(cipher, true);
    expect(encryptBody(cipher, key, a, BODY)).not.toBe(encryptBody(cipher, key, b, BODY));
  });

  it("uses an all-zero IV when randomIv is false", () => {
    const iv = newIv(cipher, false);
    expect(iv.equals(Buffer.alloc(IV_SIZE[cipher]))).toBe(true);
    const out = encryptBody(cipher, key, iv, BODY);
    expect(receiverDecrypts(cipher, key, "00".repeat(IV_SIZE[cipher]), out)).toBe(BODY);
    // Which is why it is flagged: equal bodies give equal ciphertexts.
    expect(encryptBody(cipher, key, newIv(cipher, false), BODY)).toBe(out);
  });

  it.each([0, 1, 15, 24, 31, 33, 64].filter((n) => n !== KEY_SIZE[cipher]))("refuses a %i-byte key with E_ENCRYPTION_INVALID", (n) => {
    try {
      parseBodyKey(randomBytes(n).toString("base64"), cipher);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(HookwardenError);
      expect((err as HookwardenError).code).toBe("E_ENCRYPTION_INVALID");
      expect((err as HookwardenError).message).toContain(`${KEY_SIZE[cipher]} bytes`);
    }
  });

  it("accepts the key with surrounding whitespace, as pasted into the vault", () => {
    expect(parseBodyKey(`  ${keyText}\n`, cipher).equals(Buffer.from(keyText, "base64"))).toBe(true);
  });

  it("fails to decrypt under another key", () => {
    const iv = newIv(cipher, true);
    const out = encryptBody(cipher, key, iv, BODY);
    const other = randomBytes(KEY_SIZE[cipher]);
    // A wrong CBC key passes the padding check about once in 256 tries, so look at the text too.
    let text: string | undefined;
    try {
      text = receiverDecrypts(cipher, other, iv.toString("hex"), out);
    } catch {
      text = undefined;
    }
    expect(text).not.toBe(BODY);
  });
});

describe.each([["aes-256-gcm"], ["chacha20-poly1305"]] as [BodyCipher][])("%s authenticates the body", (cipher) => {
  const key = randomBytes(32);
  const iv = newIv(cipher, true);
  const out = Buffer.from(encryptBody(cipher, key, iv, BODY), "base64");

  it.each([
    ["the first ciphertext byte", 0],
    ["a middle byte", 20],
    ["the last tag byte", -1],
  ])("refuses a body whose %s was changed", (_what, at) => {
    const tampered = Buffer.from(out);
    const i = at < 0 ? tampered.length + at : at;
    tampered[i] = tampered[i]! ^ 0x01;
    expect(() => receiverDecrypts(cipher, key, iv.toString("hex"), tampered.toString("base64"))).toThrow();
  });

  it("refuses a body decrypted with another IV", () => {
    expect(() => receiverDecrypts(cipher, key, randomBytes(12).toString("hex"), out.toString("base64"))).toThrow();
  });
});
