import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { Webhook as SvixWebhook } from "svix";
import { describe, expect, it } from "vitest";
import { HookwardenError, type ErrorCode } from "../errors/index.js";
import { checkCustomSecret, generateSecret, signingKeyFrom } from "./endpoint-secret.js";
import { signatureHeader } from "./standard-webhooks.js";

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

function refused(text: string, code: ErrorCode, loc: string[] = ["body", "secret"]): HookwardenError {
  try {
    checkCustomSecret(text, loc);
  } catch (err) {
    expect(err).toBeInstanceOf(HookwardenError);
    const e = err as HookwardenError;
    expect({ text, code: e.code, status: e.status }).toEqual({ text, code, status: 422 });
    expect(e.validation).toEqual([{ loc, msg: e.message, type: "value_error" }]);
    return e;
  }
  throw new Error(`expected ${JSON.stringify(text)} to be refused with ${code}`);
}

/** Signs with our code, verifies with the official library: the secret means the same to both. */
function libraryAgrees(secretText: string, ourSecret: ReturnType<typeof checkCustomSecret>["secret"]): void {
  const ts = Math.floor(Date.now() / 1000);
  const header = signatureHeader([signingKeyFrom(ourSecret)], "msg_chk", ts, '{"ok":true}');
  const h = { "webhook-id": "msg_chk", "webhook-timestamp": String(ts), "webhook-signature": header };
  expect(new StandardWebhook(secretText).verify('{"ok":true}', h)).toEqual({ ok: true });
}

describe("generateSecret", () => {
  it("makes whsec_ secrets of 32 random bytes that both official libraries accept", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const secret = generateSecret("hmac-sha256");
      const text = secret.reveal();
      expect(text).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
      expect(Buffer.from(text.slice(6), "base64").length).toBeGreaterThanOrEqual(24);
      expect(() => new StandardWebhook(text)).not.toThrow();
      expect(() => new SvixWebhook(text)).not.toThrow();
      seen.add(text);
    }
    expect(seen.size).toBe(20);
  });

  it("makes whsk_ ed25519 seeds that sign with the ed25519 scheme", () => {
    const a = generateSecret("ed25519").reveal();
    const b = generateSecret("ed25519").reveal();
    expect(a).toMatch(/^whsk_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(a.slice(5), "base64").length).toBe(32);
    expect(a).not.toBe(b);
    expect(signingKeyFrom(generateSecret("ed25519")).scheme).toBe("ed25519");
  });

  it("returns a value that does not print", () => {
    const secret = generateSecret("hmac-sha256");
    expect(`${secret}`).toBe("******");
    expect(JSON.stringify({ secret })).toBe('{"secret":"******"}');
    expect(inspect({ secret })).not.toContain(secret.reveal().slice(6, 20));
  });

  it("makes secrets that checkCustomSecret accepts back unchanged (copying one to another endpoint works)", () => {
    for (let i = 0; i < 50; i++) {
      for (const scheme of ["hmac-sha256", "ed25519"] as const) {
        const text = generateSecret(scheme).reveal();
        const checked = checkCustomSecret(text);
        expect(checked.scheme).toBe(scheme);
        expect(checked.secret.reveal()).toBe(text);
      }
    }
  });
});

describe("checkCustomSecret accepts", () => {
  it("random base64 of 16+ bytes with the whsec_ prefix", () => {
    for (const n of [16, 24, 32, 64]) {
      const text = `whsec_${randomBytes(n).toString("base64")}`;
      const { scheme, secret } = checkCustomSecret(text);
      expect(scheme).toBe("hmac-sha256");
      expect(secret.reveal()).toBe(text);
      libraryAgrees(text, secret);
    }
  });

  it("random base64 without the prefix (as Svix allows), stored with it", () => {
    const bare = randomBytes(16).toString("base64");
    const { scheme, secret } = checkCustomSecret(bare);
    expect(scheme).toBe("hmac-sha256");
    expect(secret.reveal()).toBe(`whsec_${bare}`);
    libraryAgrees(bare, secret);
    libraryAgrees(`whsec_${bare}`, secret);
  });

  it("the Standard Webhooks test-vector secret (24 bytes, the Svix format)", () => {
    expect(checkCustomSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").scheme).toBe("hmac-sha256");
  });

  it("a whsk_ ed25519 seed of 32 bytes", () => {
    const text = `whsk_${randomBytes(32).toString("base64")}`;
    const { scheme, secret } = checkCustomSecret(text);
    expect(scheme).toBe("ed25519");
    expect(secret.reveal()).toBe(text);
    expect(signingKeyFrom(secret).scheme).toBe("ed25519");
  });

  it("thousands of genuine random secrets without a false 'too predictable'", () => {
    // Random base64 spells short words like "test" by chance; such secrets must still pass.
    for (let i = 0; i < 5_000; i++) checkCustomSecret(`whsec_${randomBytes(24).toString("base64")}`);
    for (const text of ["whsec_prGj39N9rxCS6nwg9DTESTFRE5DtNlMg", "whsec_MFlhd20qOgQBuO6wUmteSTmofGaCMxrA", "whsec_1uwqc0LHZLteST7hKdcON474lpSh91xn"]) {
      expect(checkCustomSecret(text).scheme).toBe("hmac-sha256");
    }
  });
});

describe("checkCustomSecret refuses", () => {
  it("text that is not base64 with E_SECRET_FORMAT", () => {
    const good = randomBytes(24).toString("base64");
    for (const text of ["", "whsec_", "whsec_not base64!", `whsec_${good.slice(0, -1)}`, `whsec_${good}\n`, ` ${good}`, "whsec_" + randomBytes(24).toString("base64url").replace(/[A-Za-z0-9]/g, "-"), `whsec_${good}==`, "Bearer abcdefghijklmnopqrstuvwx"]) {
      refused(text, "E_SECRET_FORMAT");
    }
  });

  it("a whsk_ secret that is not a 32-byte seed with E_SECRET_FORMAT", () => {
    refused(`whsk_${randomBytes(16).toString("base64")}`, "E_SECRET_FORMAT");
    refused(`whsk_${randomBytes(33).toString("base64")}`, "E_SECRET_FORMAT");
  });

  it("fewer than 16 bytes with E_SECRET_TOO_SHORT", () => {
    for (const n of [1, 8, 12, 15]) {
      refused(`whsec_${randomBytes(n).toString("base64")}`, "E_SECRET_TOO_SHORT");
      refused(randomBytes(n).toString("base64"), "E_SECRET_TOO_SHORT");
    }
  });

  it("low-entropy bytes with E_SECRET_WEAK", () => {
    refused(b64("aaaaaaaaaaaaaaaaaaaa"), "E_SECRET_WEAK");
    refused(`whsec_${b64("aaaaaaaaaaaaaaaaaaaa")}`, "E_SECRET_WEAK");
    refused(`whsec_${Buffer.alloc(32).toString("base64")}`, "E_SECRET_WEAK");
    refused(`whsec_${Buffer.from("0123".repeat(8)).toString("base64")}`, "E_SECRET_WEAK");
    refused(`whsk_${Buffer.alloc(32, 7).toString("base64")}`, "E_SECRET_WEAK");
  });

  it("common words in the bytes or in the text with E_SECRET_WEAK", () => {
    refused(b64("passwordpassword1"), "E_SECRET_WEAK");
    refused(`whsec_${b64("passwordpassword1")}`, "E_SECRET_WEAK");
    refused(`whsec_${b64("My Webhook Secret 2024!")}`, "E_SECRET_WEAK");
    refused(`whsec_${b64("LetMeIn-please-9f8e7d6c")}`, "E_SECRET_WEAK");
    // Typed straight into the field: valid base64 characters, but a human's words.
    refused("whsec_MyPasswordIsLongEnough1234567890", "E_SECRET_WEAK");
    refused("supersecretpasswordforwebhooks12", "E_SECRET_WEAK");
    refused("CHANGEME0CHANGEME0CHANGEME0CHANG", "E_SECRET_WEAK");
  });

  it("with the caller's field location and without echoing the secret", () => {
    const text = `whsec_${b64("passwordpassword1")}`;
    const err = refused(text, "E_SECRET_WEAK", ["body", "key"]);
    expect(JSON.stringify({ message: err.message, validation: err.validation })).not.toContain(text.slice(6));
  });
});

describe("signingKeyFrom", () => {
  it("turns a whsec_ secret into the HMAC key its base64 encodes", () => {
    const raw = randomBytes(32);
    const key = signingKeyFrom(checkCustomSecret(`whsec_${raw.toString("base64")}`).secret);
    expect(key.scheme).toBe("hmac-sha256");
    expect(key.scheme === "hmac-sha256" && key.key.equals(raw)).toBe(true);
  });
});
