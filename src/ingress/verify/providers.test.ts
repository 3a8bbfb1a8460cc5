import { createHmac, generateKeyPairSync, randomUUID, sign as edSign, type KeyObject } from "node:crypto";
import { sign as githubSign } from "@octokit/webhooks-methods";
import { Webhook as StandardWebhook } from "standardwebhooks";
import Stripe from "stripe";
import { getExpectedBodyHash, getExpectedTwilioSignature } from "twilio/lib/webhooks/webhooks.js";
import { describe, expect, it } from "vitest";
import { SecretValue } from "../../vault/secret-value.js";
import type { ReceivedRequest, VerificationConfig, VerifyResult } from "../types.js";
import { verifySignature } from "./providers.js";

/** Every request below is "received" at this instant; signatures are made relative to it. */
const NOW = 1_750_000_000_000;
const NOW_SEC = NOW / 1000;

function received(opts: { body: string | Buffer; headers?: Record<string, string>; publicUrl?: string; receivedAt?: number }): ReceivedRequest {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.headers ?? {})) headers[k.toLowerCase()] = v;
  const publicUrl = opts.publicUrl ?? "https://hooks.example.com/in/8d4f0c8e-3b5e-4f7a-9c1d-2e6b7a9f0c11";
  const url = new URL(publicUrl);
  return {
    method: "POST",
    publicUrl,
    suffix: "",
    query: url.search.slice(1),
    headers,
    rawHeaders: Object.entries(opts.headers ?? {}),
    body: Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body, "utf8"),
    clientIp: "203.0.113.10",
    receivedAt: opts.receivedAt ?? NOW,
  };
}

function verify(cfg: VerificationConfig | VerificationConfig["type"], secret: string | undefined, req: ReceivedRequest): VerifyResult {
  return verifySignature(typeof cfg === "string" ? { type: cfg } : cfg, secret === undefined ? undefined : new SecretValue(secret), req);
}

/** The same request with one byte of the body changed. */
function flipByte(req: ReceivedRequest, at = 3): ReceivedRequest {
  const body = Buffer.from(req.body);
  body[at] = body[at]! ^ 0x01;
  return { ...req, body };
}

function withoutHeader(req: ReceivedRequest, name: string): ReceivedRequest {
  const headers = { ...req.headers };
  delete headers[name.toLowerCase()];
  return { ...req, headers };
}

function expectRejected(r: VerifyResult, reason?: RegExp): void {
  expect(r.ok, JSON.stringify(r)).toBe(false);
  if (reason && !r.ok) expect(r.reason).toMatch(reason);
}

describe("stripe (signed with the stripe package)", () => {
  const stripe = new Stripe("sk_test_x");
  const SECRET = "whsec_test_8pW3mBFk2mZ1V4LxQe9s7YtR";
  const body = JSON.stringify({ id: "evt_1PqR5sT2uV3wX4yZ", object: "event", type: "payment_intent.succeeded", data: { object: { amount: 2000, currency: "eur", description: "Café ☕" } } });
  const header = (secret: string, timestamp = NOW_SEC) => stripe.webhooks.generateTestHeaderString({ payload: body, secret, timestamp });
  const req = (h: string) => received({ body, headers: { "Stripe-Signature": h, "Content-Type": "application/json" } });

  it("accepts a valid request and takes the delivery id from the event id in the body", () => {
    expect(verify("stripe", SECRET, req(header(SECRET)))).toEqual({ ok: true, deliveryId: "evt_1PqR5sT2uV3wX4yZ" });
  });

  it("rejects a changed body byte, a wrong secret and a missing header", () => {
    expectRejected(verify("stripe", SECRET, flipByte(req(header(SECRET)), 20)), /no v1 signature matched/);
    expectRejected(verify("stripe", SECRET, req(header("whsec_someone_elses_secret"))), /no v1 signature matched/);
    expectRejected(verify("stripe", SECRET, withoutHeader(req(header(SECRET)), "stripe-signature")), /missing Stripe-Signature/);
    expectRejected(verify("stripe", SECRET, req(header(SECRET).replace(/v1=/, "v0="))));
  });

  it("enforces the 300 s replay window in both directions", () => {
    expect(verify("stripe", SECRET, req(header(SECRET, NOW_SEC - 299))).ok).toBe(true);
    expectRejected(verify("stripe", SECRET, req(header(SECRET, NOW_SEC - 301))), /replay window/);
    expectRejected(verify("stripe", SECRET, req(header(SECRET, NOW_SEC + 301))), /replay window/);
  });

  it("accepts either of two v1 signatures while the sender rolls its secret", () => {
    const OLD = "whsec_old_4mZ1V4LxQe9s7YtR8pW3mBFk";
    const rolled = `${header(SECRET)},v1=${header(OLD).split("v1=")[1]}`;
    expect(rolled.match(/v1=/g)).toHaveLength(2);
    expect(verify("stripe", SECRET, req(rolled)).ok).toBe(true);
    expect(verify("stripe", OLD, req(rolled)).ok).toBe(true);
    expectRejected(verify("stripe", "whsec_neither_of_them", req(rolled)));
  });
});

describe("github (signed with @octokit/webhooks-methods)", () => {
  const SECRET = "gh-webhook-secret-7f3a9c";
  const body = JSON.stringify({ action: "opened", number: 42, pull_request: { title: "Grüße 👋" } });
  const DELIVERY = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
  const req = async (secret: string) =>
    received({ body, headers: { "X-Hub-Signature-256": await githubSign(secret, body), "X-GitHub-Delivery": DELIVERY, "X-GitHub-Event": "pull_request" } });

  it("accepts a valid request and takes the delivery id from X-GitHub-Delivery", async () => {
    expect(verify("github", SECRET, await req(SECRET))).toEqual({ ok: true, deliveryId: DELIVERY });
  });

  it("rejects a changed body byte, a wrong secret and a missing header", async () => {
    expectRejected(verify("github", SECRET, flipByte(await req(SECRET))));
    expectRejected(verify("github", SECRET, await req("not-the-secret")));
    expectRejected(verify("github", SECRET, withoutHeader(await req(SECRET), "x-hub-signature-256")), /missing X-Hub-Signature-256/);
  });

  it("matches GitHub's documented test values (docs.github.com, Validating webhook deliveries)", () => {
    const doc = received({ body: "Hello, World!", headers: { "X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17" } });
    expect(verify("github", "It's a Secret to Everybody", doc).ok).toBe(true);
    expectRejected(verify("github", "It's a Secret to Everybody", flipByte(doc)));
  });
});

describe("shopify (documented algorithm, computed independently with node:crypto)", () => {
  // Shopify publishes no test vector: base64 HMAC-SHA256 of the raw body under the app's client secret.
  const SECRET = "shpss_4c1e2f8a9b7d6e5f";
  const body = JSON.stringify({ id: 820982911946154500, email: "jon@example.com", note: "naïve" });
  const hmacOf = (secret: string) => createHmac("sha256", secret).update(body, "utf8").digest("base64");
  const req = (secret: string) =>
    received({ body, headers: { "X-Shopify-Hmac-Sha256": hmacOf(secret), "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", "X-Shopify-Topic": "orders/create" } });

  it("accepts a valid request and takes the delivery id from X-Shopify-Webhook-Id", () => {
    expect(verify("shopify", SECRET, req(SECRET))).toEqual({ ok: true, deliveryId: "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043" });
  });

  it("rejects a changed body byte, a wrong secret, a hex digest and a missing header", () => {
    expectRejected(verify("shopify", SECRET, flipByte(req(SECRET))));
    expectRejected(verify("shopify", SECRET, req("shpss_other")));
    const hex = received({ body, headers: { "X-Shopify-Hmac-Sha256": createHmac("sha256", SECRET).update(body).digest("hex") } });
    expectRejected(verify("shopify", SECRET, hex));
    expectRejected(verify("shopify", SECRET, withoutHeader(req(SECRET), "x-shopify-hmac-sha256")), /missing X-Shopify-Hmac-Sha256/);
  });
});

describe("slack (documented algorithm and Slack's published example)", () => {
  // Slack's worked example (docs.slack.dev/authentication/verifying-requests-from-slack), as kept
  // in Slack's own python-slack-sdk tests/slack_sdk/signature/test_signature_verifier.py.
  const DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
  const DOC_TS = "1531420618";
  const DOC_BODY =
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
  const DOC_SIG = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
  const docReq = (receivedAt: number) =>
    received({ body: DOC_BODY, headers: { "X-Slack-Signature": DOC_SIG, "X-Slack-Request-Timestamp": DOC_TS, "Content-Type": "application/x-www-form-urlencoded" }, receivedAt });

  const SECRET = "b1e6a9d0c3f24e7a8d5c6b7a8e9f0a1b";
  const body = JSON.stringify({ type: "event_callback", event_id: "Ev08MFMKH6", event: { type: "app_mention", text: "héllo" } });
  const sign = (secret: string, ts: number) => `v0=${createHmac("sha256", secret).update(`v0:${ts}:${body}`).digest("hex")}`;
  const req = (secret: string, ts = NOW_SEC) => received({ body, headers: { "X-Slack-Signature": sign(secret, ts), "X-Slack-Request-Timestamp": String(ts) } });

  it("accepts Slack's published example a minute after it was sent, and nothing changed from it", () => {
    const at = Number(DOC_TS) * 1000 + 60_000;
    expect(verify("slack", DOC_SECRET, docReq(at))).toEqual({ ok: true, deliveryId: undefined });
    expectRejected(verify("slack", DOC_SECRET, flipByte(docReq(at), 40)));
    expectRejected(verify("slack", "8f742231b10e8888abcd99yyyzzz85a6", docReq(at)));
  });

  it("refuses Slack's published example today: it is years outside the 300 s window", () => {
    expectRejected(verify("slack", DOC_SECRET, docReq(NOW)), /replay window/);
  });

  it("accepts a signed Events API request and takes the delivery id from event_id", () => {
    expect(verify("slack", SECRET, req(SECRET))).toEqual({ ok: true, deliveryId: "Ev08MFMKH6" });
  });

  it("rejects a changed body byte, a wrong secret, a stale timestamp and a missing header", () => {
    expectRejected(verify("slack", SECRET, flipByte(req(SECRET), 10)), /did not match/);
    expectRejected(verify("slack", SECRET, req("a-different-signing-secret")), /did not match/);
    expect(verify("slack", SECRET, req(SECRET, NOW_SEC - 299)).ok).toBe(true);
    expectRejected(verify("slack", SECRET, req(SECRET, NOW_SEC - 301)), /replay window/);
    expectRejected(verify("slack", SECRET, withoutHeader(req(SECRET), "x-slack-signature")), /missing/);
    expectRejected(verify("slack", SECRET, withoutHeader(req(SECRET), "x-slack-request-timestamp")), /missing/);
  });

  it("does not let a signature be moved to another timestamp", () => {
    const moved = received({ body, headers: { "X-Slack-Signature": sign(SECRET, NOW_SEC - 100), "X-Slack-Request-Timestamp": String(NOW_SEC) } });
    expectRejected(verify("slack", SECRET, moved));
  });
});

describe("twilio (signed with the twilio package)", () => {
  const TOKEN = "9f2b7c4e1a8d3f6b5c0e7a2d4f8b1c3e";
  const URL_BASE = "https://hooks.example.com/in/8d4f0c8e-3b5e-4f7a-9c1d-2e6b7a9f0c11";
  const params = { MessageSid: "SM1f0e8c2a3b4d5e6f7a8b9c0d1e2f3a4b", From: "+14155550100", To: "+14155550199", Body: "Hi there & welcome: 100% ✓", NumMedia: "0" };
  const form = new URLSearchParams(params).toString();
  const formReq = (signature: string, publicUrl = URL_BASE, body = form) =>
    received({
      body,
      publicUrl,
      headers: { "X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8", "I-Twilio-Idempotency-Token": "6c1c3a5e-9a0b-4c1d-8e2f-3a4b5c6d7e8f" },
    });

  it("accepts a form request signed over the URL and the sorted parameters, with the idempotency token as delivery id", () => {
    const sig = getExpectedTwilioSignature(TOKEN, URL_BASE, params);
    expect(verify("twilio", TOKEN, formReq(sig))).toEqual({ ok: true, deliveryId: "6c1c3a5e-9a0b-4c1d-8e2f-3a4b5c6d7e8f" });
  });

  it("rejects a changed body byte, a wrong auth token, another URL and a missing header", () => {
    const sig = getExpectedTwilioSignature(TOKEN, URL_BASE, params);
    expectRejected(verify("twilio", TOKEN, flipByte(formReq(sig), form.indexOf("Body=") + 6)));
    expectRejected(verify("twilio", TOKEN, formReq(getExpectedTwilioSignature("0000000000000000000000000000000", URL_BASE, params))));
    expectRejected(verify("twilio", TOKEN, formReq(sig, `${URL_BASE}/other`)));
    expectRejected(verify("twilio", TOKEN, formReq(sig, `${URL_BASE}?extra=1`)));
    expectRejected(verify("twilio", TOKEN, withoutHeader(formReq(sig), "x-twilio-signature")), /missing X-Twilio-Signature/);
  });

  it("reads the form parameters whatever the case of the media type (RFC 9110 §8.3.1)", () => {
    const sig = getExpectedTwilioSignature(TOKEN, URL_BASE, params);
    const req = formReq(sig);
    expect(verify("twilio", TOKEN, { ...req, headers: { ...req.headers, "content-type": "Application/X-WWW-Form-Urlencoded" } }).ok).toBe(true);
  });

  it("signs repeated parameters as the package does (each value once, sorted)", () => {
    const repeated = "Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=1234";
    const sig = getExpectedTwilioSignature(TOKEN, URL_BASE, { Sid: "CA123", SidAccount: "AC123", Digits: ["5678", "1234", "1234"] });
    expect(verify("twilio", TOKEN, formReq(sig, URL_BASE, repeated)).ok).toBe(true);
  });

  it("accepts a URL signed with or without the default port, but not another port", () => {
    const https = "https://hooks.example.com/in/x?a=1";
    const https443 = "https://hooks.example.com:443/in/x?a=1";
    expect(verify("twilio", TOKEN, formReq(getExpectedTwilioSignature(TOKEN, https443, params), https)).ok).toBe(true);
    expect(verify("twilio", TOKEN, formReq(getExpectedTwilioSignature(TOKEN, https, params), https443)).ok).toBe(true);
    const http = "http://hooks.example.com/in/x";
    expect(verify("twilio", TOKEN, formReq(getExpectedTwilioSignature(TOKEN, "http://hooks.example.com:80/in/x", params), http)).ok).toBe(true);
    expectRejected(verify("twilio", TOKEN, formReq(getExpectedTwilioSignature(TOKEN, "https://hooks.example.com:8443/in/x?a=1", params), https)));
    expectRejected(verify("twilio", TOKEN, formReq(getExpectedTwilioSignature(TOKEN, "https://hooks.example.com:443/in/x?a=1", params), "http://hooks.example.com/in/x?a=1")));
  });

  it("accepts a JSON request whose URL carries bodySHA256, and rejects any change to the body", () => {
    const body = JSON.stringify({ EventType: "onMessageAdded", Body: "hello ✓", Index: 3 });
    const url = `${URL_BASE}?bodySHA256=${getExpectedBodyHash(body)}`;
    const sig = getExpectedTwilioSignature(TOKEN, url, {});
    const req = received({ body, publicUrl: url, headers: { "X-Twilio-Signature": sig, "Content-Type": "application/json", "I-Twilio-Idempotency-Token": "idem-json-1" } });
    expect(verify("twilio", TOKEN, req)).toEqual({ ok: true, deliveryId: "idem-json-1" });
    expectRejected(verify("twilio", TOKEN, flipByte(req, 10)), /bodySHA256/);
    expectRejected(verify("twilio", "wrong-token", req));
    expectRejected(verify("twilio", TOKEN, withoutHeader(req, "x-twilio-signature")));
  });

  // Vectors from Twilio's own twilio-php tests/Twilio/Unit/Security/RequestValidatorTest.php
  // (the example of twilio.com/docs/usage/security): auth token 12345.
  describe("Twilio's published vectors", () => {
    const url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const docParams = new URLSearchParams({ CallSid: "CA1234567890ABCDE", Caller: "+14158675309", Digits: "1234", From: "+14158675309", To: "+18005551212" }).toString();
    const docReq = (signature: string, headers: Record<string, string> = {}) =>
      received({ body: docParams, publicUrl: url, headers: { "X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded", ...headers } });

    it("form parameters, with and without :443", () => {
      expect(verify("twilio", "12345", docReq("RSOYDt4T1cUTdK1PDd93/VVr8B8=")).ok).toBe(true);
      expect(verify("twilio", "12345", docReq("kvajT1Ptam85bY51eRf/AJRuM3w=")).ok).toBe(true);
      expectRejected(verify("twilio", "12346", docReq("RSOYDt4T1cUTdK1PDd93/VVr8B8=")));
    });

    it("a JSON body with bodySHA256", () => {
      const body = '{"property": "value", "boolean": true}';
      const withHash = `${url}&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620`;
      const req = received({ body, publicUrl: withHash, headers: { "X-Twilio-Signature": "a9nBmqA0ju/hNViExpshrM61xv4=", "Content-Type": "application/json" } });
      expect(verify("twilio", "12345", req).ok).toBe(true);
    });

    it("a URL with basic-auth credentials, which Twilio signs as configured (user:pass@host)", () => {
      // Twilio calls https://user:pass@host/... and signs that URL; the credentials arrive in the
      // Authorization header (a bucket with basic auth), not in the Host Hookwarden sees.
      const basic = { Authorization: `Basic ${Buffer.from("user:pass").toString("base64")}` };
      expect(verify("twilio", "12345", docReq("CukzLTc1tT5dXEDIHm/tKBanW10=", basic)).ok).toBe(true);
      expect(verify("twilio", "12345", docReq("ZQFR1PTIZXF2MXB8ZnKCvnnA+rI=", basic)).ok).toBe(true);
      expectRejected(verify("twilio", "12345", docReq("CukzLTc1tT5dXEDIHm/tKBanW10=", { Authorization: `Basic ${Buffer.from("user:other").toString("base64")}` })));
      expectRejected(verify("twilio", "12345", docReq("CukzLTc1tT5dXEDIHm/tKBanW10=")));
    });
  });
});

describe("standard-webhooks", () => {
  const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  const body = JSON.stringify({ type: "invoice.paid", data: { id: "inv_1", total: 1999, note: "Zoë" } });
  const MSG = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
  const headers = (signature: string, ts = NOW_SEC) => ({ "webhook-id": MSG, "webhook-timestamp": String(ts), "webhook-signature": signature });

  describe("v1 (signed with the standardwebhooks package)", () => {
    const sign = (secret: string, ts = NOW_SEC) => new StandardWebhook(secret).sign(MSG, new Date(ts * 1000), body);
    const req = (secret: string, ts = NOW_SEC) => received({ body, headers: headers(sign(secret, ts), ts) });

    it("accepts a valid request and takes the delivery id from webhook-id", () => {
      expect(verify("standard-webhooks", SECRET, req(SECRET))).toEqual({ ok: true, deliveryId: MSG });
    });

    it("rejects a changed body byte, a wrong secret, a stale timestamp and each missing header", () => {
      expectRejected(verify("standard-webhooks", SECRET, flipByte(req(SECRET))), /no v1 signature matched/);
      expectRejected(verify("standard-webhooks", SECRET, req("whsec_dGhpc2lzYW5vdGhlcmhpZ2hlbnRyb3B5a2V5Pz8hIQ==")), /no v1 signature matched/);
      expect(verify("standard-webhooks", SECRET, req(SECRET, NOW_SEC - 299)).ok).toBe(true);
      expectRejected(verify("standard-webhooks", SECRET, req(SECRET, NOW_SEC - 301)), /replay window/);
      expectRejected(verify("standard-webhooks", SECRET, req(SECRET, NOW_SEC + 301)), /replay window/);
      for (const h of ["webhook-id", "webhook-timestamp", "webhook-signature"]) {
        expectRejected(verify("standard-webhooks", SECRET, withoutHeader(req(SECRET), h)), /missing/);
      }
    });

    it("accepts a header carrying several signatures (a sender rotating its key)", () => {
      const both = `${sign("whsec_dGhpc2lzYW5vdGhlcmhpZ2hlbnRyb3B5a2V5Pz8hIQ==")} ${sign(SECRET)}`;
      expect(verify("standard-webhooks", SECRET, received({ body, headers: headers(both) })).ok).toBe(true);
    });

    it("does not let a signature be moved to another message id", () => {
      const req = received({ body, headers: { ...headers(sign(SECRET)), "webhook-id": "msg_other" } });
      expectRejected(verify("standard-webhooks", SECRET, req));
    });
  });

  describe("v1a (ed25519, the input holds the sender's whpk_ public key)", () => {
    const keyPair = () => generateKeyPairSync("ed25519");
    const whpk = (publicKey: KeyObject) => `whpk_${publicKey.export({ format: "der", type: "spki" }).subarray(-32).toString("base64")}`;
    const sign = (privateKey: KeyObject, ts = NOW_SEC, id = MSG) => `v1a,${edSign(null, Buffer.from(`${id}.${ts}.${body}`, "utf8"), privateKey).toString("base64")}`;
    const sender = keyPair();
    const PUBLIC = whpk(sender.publicKey);
    const req = (privateKey: KeyObject, ts = NOW_SEC) => received({ body, headers: headers(sign(privateKey, ts), ts) });

    it("accepts a request signed with the sender's private key", () => {
      expect(verify("standard-webhooks", PUBLIC, req(sender.privateKey))).toEqual({ ok: true, deliveryId: MSG });
    });

    it("rejects a changed body byte, another key, a stale timestamp, a v1 HMAC and a missing header", () => {
      expectRejected(verify("standard-webhooks", PUBLIC, flipByte(req(sender.privateKey))), /no v1a signature matched/);
      expectRejected(verify("standard-webhooks", PUBLIC, req(keyPair().privateKey)), /no v1a signature matched/);
      expectRejected(verify("standard-webhooks", PUBLIC, req(sender.privateKey, NOW_SEC - 301)), /replay window/);
      const hmacOnly = received({ body, headers: headers(new StandardWebhook(SECRET).sign(MSG, new Date(NOW), body)) });
      expectRejected(verify("standard-webhooks", PUBLIC, hmacOnly));
      expectRejected(verify("standard-webhooks", PUBLIC, withoutHeader(req(sender.privateKey), "webhook-signature")), /missing/);
    });

    it("refuses, rather than crashes, when the input's whpk_ key is not an ed25519 public key", () => {
      const short = `whpk_${Buffer.alloc(16, 7).toString("base64")}`;
      expectRejected(verify("standard-webhooks", short, req(sender.privateKey)), /not an ed25519 public key/);
    });
  });
});

describe("hmac-sha256 (generic, the operator names the header)", () => {
  const SECRET = "generic-secret-1c9e";
  const body = JSON.stringify({ event: "build.finished", id: 7, status: "grün" });
  const hex = (secret: string) => createHmac("sha256", secret).update(body).digest("hex");
  const b64 = (secret: string) => createHmac("sha256", secret).update(body).digest("base64");
  const cases: { name: string; cfg: VerificationConfig; value: (secret: string) => string }[] = [
    { name: "hex", cfg: { type: "hmac-sha256", header: "X-Signature", encoding: "hex", prefix: "" }, value: hex },
    { name: "base64", cfg: { type: "hmac-sha256", header: "X-Signature", encoding: "base64", prefix: "" }, value: b64 },
    { name: "hex with a sha256= prefix", cfg: { type: "hmac-sha256", header: "X-Hub-Signature-256", encoding: "hex", prefix: "sha256=" }, value: (s) => `sha256=${hex(s)}` },
  ];

  for (const c of cases) {
    describe(c.name, () => {
      const req = (secret: string, headers: Record<string, string> = {}) => received({ body, headers: { [c.cfg.header!]: c.value(secret), "Webhook-Id": "evt-77", ...headers } });

      it("accepts a valid request (the scheme has no delivery id of its own)", () => {
        expect(verify(c.cfg, SECRET, req(SECRET))).toEqual({ ok: true, deliveryId: undefined });
      });

      it("rejects a changed body byte, a wrong secret and a missing header", () => {
        expectRejected(verify(c.cfg, SECRET, flipByte(req(SECRET))), /did not match/);
        expectRejected(verify(c.cfg, SECRET, req("another-secret")), /did not match/);
        expectRejected(verify(c.cfg, SECRET, withoutHeader(req(SECRET), c.cfg.header!)), /missing/);
      });
    });
  }

  it("requires the configured prefix", () => {
    const cfg: VerificationConfig = { type: "hmac-sha256", header: "X-Hub-Signature-256", encoding: "hex", prefix: "sha256=" };
    expectRejected(verify(cfg, SECRET, received({ body, headers: { "X-Hub-Signature-256": hex(SECRET) } })), /does not start with/);
  });

  it("does not accept a base64 digest where hex is configured, nor the reverse", () => {
    const hexCfg: VerificationConfig = { type: "hmac-sha256", header: "X-Signature", encoding: "hex", prefix: "" };
    const b64Cfg: VerificationConfig = { ...hexCfg, encoding: "base64" };
    expectRejected(verify(hexCfg, SECRET, received({ body, headers: { "X-Signature": b64(SECRET) } })));
    expectRejected(verify(b64Cfg, SECRET, received({ body, headers: { "X-Signature": hex(SECRET) } })));
  });
});

describe("every scheme", () => {
  it("refuses when the input has no secret, and 'none' accepts anything", () => {
    const req = received({ body: "{}", headers: { "X-GitHub-Delivery": randomUUID() } });
    for (const type of ["stripe", "github", "shopify", "slack", "twilio", "standard-webhooks"] as const) {
      expectRejected(verify(type, undefined, req), /no verification secret/);
    }
    expect(verify("none", undefined, req)).toEqual({ ok: true, deliveryId: undefined });
  });
});
