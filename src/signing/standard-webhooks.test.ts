import { createPublicKey, generateKeyPairSync, randomBytes, verify as edVerify } from "node:crypto";
import { Webhook as StandardWebhook, WebhookVerificationError } from "standardwebhooks";
import { Webhook as SvixWebhook } from "svix";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SecretValue } from "../vault/secret-value.js";
import { generateSecret, signingKeyFrom } from "./endpoint-secret.js";
import { ed25519FromSeed, ed25519PublicKeyText, sign, signatureHeader, signedContent, type SigningKey } from "./standard-webhooks.js";

/** ASN.1 SubjectPublicKeyInfo header for an ed25519 key (RFC 8410 §4), followed by the raw 32 bytes. */
const SPKI_ED25519_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

/** What a receiver does with the `whpk_` text it was given, using nothing but node:crypto. */
function receiverVerifiesV1a(publicKeyText: string, header: string, msgId: string, ts: number, body: string): boolean {
  expect(publicKeyText).toMatch(/^whpk_/);
  const raw = Buffer.from(publicKeyText.slice("whpk_".length), "base64");
  expect(raw.length).toBe(32);
  const publicKey = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: "der", type: "spki" });
  const content = Buffer.from(`${msgId}.${ts}.${body}`, "utf8");
  return header
    .split(" ")
    .filter((s) => s.startsWith("v1a,"))
    .some((s) => edVerify(null, content, publicKey, Buffer.from(s.slice(4), "base64")));
}

function headers(msgId: string, ts: number, signature: string) {
  return { "webhook-id": msgId, "webhook-timestamp": String(ts), "webhook-signature": signature };
}

const now = () => Math.floor(Date.now() / 1000);
const hmac = (secret: SecretValue): SigningKey => signingKeyFrom(secret);

describe("Standard Webhooks test vector", () => {
  // Published in the Standard Webhooks specification's libraries and in Svix's own test suite
  // (svix/src/webhook.test.ts, "sign function works").
  const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  const msgId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
  const timestamp = 1614265330;
  const payload = '{"test": 2432232314}';
  const expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

  afterEach(() => vi.useRealTimers());

  it("is reproduced byte for byte from the whsec_ text, a raw key and a Buffer body", () => {
    expect(signatureHeader([hmac(new SecretValue(secret))], msgId, timestamp, payload)).toBe(expected);
    const raw: SigningKey = { scheme: "hmac-sha256", key: Buffer.from("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "base64") };
    expect(signatureHeader([raw], msgId, timestamp, Buffer.from(payload))).toBe(expected);
    expect(sign(raw, signedContent(msgId, timestamp, payload))).toBe(expected);
  });

  it("is what both reference libraries accept at the vector's own time", () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(timestamp * 1000);
    const header = signatureHeader([hmac(new SecretValue(secret))], msgId, timestamp, payload);
    expect(new StandardWebhook(secret).verify(payload, headers(msgId, timestamp, header))).toEqual({ test: 2432232314 });
    expect(new SvixWebhook(secret).verify(payload, headers(msgId, timestamp, header))).toEqual({ test: 2432232314 });
  });
});

describe("v1 (HMAC-SHA256) signatures verified by the official libraries", () => {
  const body = JSON.stringify({ type: "invoice.paid", data: { id: "in_1", amount: 4200, note: "café ✓ 🚀" } });

  it("standardwebhooks and svix accept a signature made with a generated whsec_ secret", () => {
    const secret = generateSecret("hmac-sha256");
    const ts = now();
    const header = signatureHeader([hmac(secret)], "msg_1", ts, body);
    expect(header).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(new StandardWebhook(secret.reveal()).verify(body, headers("msg_1", ts, header))).toEqual(JSON.parse(body));
    expect(new SvixWebhook(secret.reveal()).verify(body, headers("msg_1", ts, header))).toEqual(JSON.parse(body));
    // Svix's own header names carry the same values.
    const svixHeaders = { "svix-id": "msg_1", "svix-timestamp": String(ts), "svix-signature": header };
    expect(new SvixWebhook(secret.reveal()).verify(Buffer.from(body), svixHeaders)).toEqual(JSON.parse(body));
  });

  it("standardwebhooks accepts a signature over a Buffer body holding multi-byte UTF-8", () => {
    const secret = generateSecret("hmac-sha256");
    const ts = now();
    const header = signatureHeader([hmac(secret)], "msg_utf8", ts, Buffer.from(body, "utf8"));
    expect(new StandardWebhook(secret.reveal()).verify(body, headers("msg_utf8", ts, header))).toEqual(JSON.parse(body));
  });

  it("during a rotation the header carries two signatures and a receiver holding either secret accepts", () => {
    const oldSecret = generateSecret("hmac-sha256");
    const newSecret = generateSecret("hmac-sha256");
    const ts = now();
    const header = signatureHeader([hmac(newSecret), hmac(oldSecret)], "msg_rot", ts, body);
    const parts = header.split(" ");
    expect(parts).toHaveLength(2);
    expect(parts.every((p) => p.startsWith("v1,"))).toBe(true);
    for (const secret of [oldSecret, newSecret]) {
      expect(new StandardWebhook(secret.reveal()).verify(body, headers("msg_rot", ts, header))).toEqual(JSON.parse(body));
      expect(new SvixWebhook(secret.reveal()).verify(body, headers("msg_rot", ts, header))).toEqual(JSON.parse(body));
    }
    const stranger = generateSecret("hmac-sha256").reveal();
    expect(() => new StandardWebhook(stranger).verify(body, headers("msg_rot", ts, header))).toThrow(WebhookVerificationError);
  });

  it("a header mixing v1a and v1 is still accepted by libraries that only know v1", () => {
    const ed = signingKeyFrom(generateSecret("ed25519"));
    const secret = generateSecret("hmac-sha256");
    const ts = now();
    const header = signatureHeader([ed, hmac(secret)], "msg_mix", ts, body);
    expect(header).toMatch(/^v1a,\S+ v1,\S+$/);
    expect(new StandardWebhook(secret.reveal()).verify(body, headers("msg_mix", ts, header))).toEqual(JSON.parse(body));
    expect(new SvixWebhook(secret.reveal()).verify(body, headers("msg_mix", ts, header))).toEqual(JSON.parse(body));
  });

  it("the libraries refuse a changed body, id or timestamp, and a wrong secret", () => {
    const secret = generateSecret("hmac-sha256");
    const ts = now();
    const header = signatureHeader([hmac(secret)], "msg_2", ts, body);
    const sw = new StandardWebhook(secret.reveal());
    const sv = new SvixWebhook(secret.reveal());
    const changedBody = body.replace("4200", "4201");
    for (const wh of [sw, sv]) {
      expect(() => wh.verify(changedBody, headers("msg_2", ts, header))).toThrow(/No matching signature/);
      expect(() => wh.verify(body + " ", headers("msg_2", ts, header))).toThrow(/No matching signature/);
      expect(() => wh.verify(body, headers("msg_3", ts, header))).toThrow(/No matching signature/);
      expect(() => wh.verify(body, headers("msg_2", ts - 1, header))).toThrow(/No matching signature/);
    }
    const wrong = generateSecret("hmac-sha256").reveal();
    expect(() => new StandardWebhook(wrong).verify(body, headers("msg_2", ts, header))).toThrow(WebhookVerificationError);
    // svix bundles its own copy of standardwebhooks, so its error is a different class.
    expect(() => new SvixWebhook(wrong).verify(body, headers("msg_2", ts, header))).toThrow(/No matching signature/);
  });
});

describe("v1a (ed25519) signatures verified with plain node:crypto", () => {
  const body = '{"type":"user.created","data":{"id":"u_1"}}';

  it("a receiver holding the whpk_ text verifies the signature, and rejects changes", () => {
    const key = signingKeyFrom(generateSecret("ed25519"));
    if (key.scheme !== "ed25519") throw new Error("expected an ed25519 key");
    const pk = ed25519PublicKeyText(key.key);
    const ts = now();
    const header = signatureHeader([key], "msg_ed", ts, body);
    expect(header).toMatch(/^v1a,[A-Za-z0-9+/]{86}==$/);
    expect(receiverVerifiesV1a(pk, header, "msg_ed", ts, body)).toBe(true);
    expect(receiverVerifiesV1a(pk, header, "msg_ed", ts, body.replace("u_1", "u_2"))).toBe(false);
    expect(receiverVerifiesV1a(pk, header, "msg_other", ts, body)).toBe(false);
    expect(receiverVerifiesV1a(pk, header, "msg_ed", ts + 1, body)).toBe(false);
    const otherKey = signingKeyFrom(generateSecret("ed25519"));
    if (otherKey.scheme !== "ed25519") throw new Error("expected an ed25519 key");
    expect(receiverVerifiesV1a(ed25519PublicKeyText(otherKey.key), header, "msg_ed", ts, body)).toBe(false);
  });

  it("whpk_ is the raw public key that node:crypto derives on its own from the same seed", () => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const jwk = privateKey.export({ format: "jwk" });
    const seed = Buffer.from(jwk.d!, "base64url");
    const ours = ed25519FromSeed(seed);
    expect(ed25519PublicKeyText(ours)).toBe(`whpk_${Buffer.from(jwk.x!, "base64url").toString("base64")}`);
    const content = signedContent("msg_x", 1700000000, body);
    const sig = Buffer.from(sign({ scheme: "ed25519", key: ours }, content).slice(4), "base64");
    expect(edVerify(null, content, publicKey, sig)).toBe(true);
  });

  // RFC 8032 §7.1, TEST 1 and TEST 2: published seed, public key and signature.
  it.each([
    {
      seed: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
      pub: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
      msg: "",
      sig: "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    },
    {
      seed: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
      pub: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
      msg: "72",
      sig: "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    },
  ])("reproduces the RFC 8032 vector for public key $pub", ({ seed, pub, msg, sig }) => {
    const key = ed25519FromSeed(Buffer.from(seed, "hex"));
    expect(ed25519PublicKeyText(key)).toBe(`whpk_${Buffer.from(pub, "hex").toString("base64")}`);
    expect(sign({ scheme: "ed25519", key }, Buffer.from(msg, "hex"))).toBe(`v1a,${Buffer.from(sig, "hex").toString("base64")}`);
    // The same seed given as a whsk_ secret signs identically.
    const fromSecret = signingKeyFrom(new SecretValue(`whsk_${Buffer.from(seed, "hex").toString("base64")}`));
    expect(sign(fromSecret, Buffer.from(msg, "hex"))).toBe(`v1a,${Buffer.from(sig, "hex").toString("base64")}`);
  });
});

describe("signatureHeader", () => {
  it("signs id.timestamp.body with one space-separated entry per key, in key order", () => {
    const a: SigningKey = { scheme: "hmac-sha256", key: randomBytes(32) };
    const b: SigningKey = { scheme: "hmac-sha256", key: randomBytes(32) };
    const content = signedContent("msg_o", 42, "{}");
    expect(content.toString()).toBe("msg_o.42.{}");
    expect(signatureHeader([a, b], "msg_o", 42, "{}")).toBe(`${sign(a, content)} ${sign(b, content)}`);
    expect(signatureHeader([], "msg_o", 42, "{}")).toBe("");
  });
});
