import { createDecipheriv, randomBytes } from "node:crypto";
import { Webhook, WebhookVerificationError } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import type { Integration } from "../endpoints/integration.js";
import { HookwardenError } from "../errors/index.js";
import { signingKeyFrom } from "../signing/endpoint-secret.js";
import { compileTemplate, type RequestTemplateDef } from "../templates/request.js";
import { SecretValue } from "../vault/secret-value.js";
import type { BodyCipher } from "../endpoints/body-encryption.js";
import { buildRequest, type BuildInput, type BuiltRequest } from "./build-request.js";

const SIGNING_SECRET = `whsec_${randomBytes(24).toString("base64")}`;
const CANARY = "canary-Zq9&x=1 /+é";
const PAYLOAD = JSON.stringify({ ticket: { id: "T-7", subject: "Printer on fire" } });

class CountingSecret extends SecretValue {
  reveals = 0;
  override reveal(): string {
    this.reveals++;
    return super.reveal();
  }
}

function integration(over: Partial<Integration> = {}): Integration {
  return { template: null, auth: null, encryption: null, redactResponses: false, timeoutMs: null, ...over };
}

function build(i: Integration, secrets: Record<string, string | SecretValue> = {}, over: Partial<BuildInput> = {}): BuiltRequest {
  const url = "https://crm.example.com/hooks";
  return buildRequest({
    ep: { url, signature_scheme: "hmac-sha256" },
    msg: { id: "msg_2b3c", event_id: "evt_1", event_type: "ticket.created", payload: PAYLOAD, created_at: Date.now() },
    integration: i,
    compiled: "compiled" in over ? over.compiled : i.template ? compileTemplate(i.template, url, new Set(Object.keys(secrets))) : undefined,
    customHeaders: {},
    signingKeys: [signingKeyFrom(new SecretValue(SIGNING_SECRET))],
    secrets: new Map(Object.entries(secrets).map(([k, v]) => [k, typeof v === "string" ? new SecretValue(v) : v])),
    timestamp: Math.floor(Date.now() / 1000),
    outputLimit: 1024 * 1024,
    ...over,
  });
}

/** The receiver's check, with the official Standard Webhooks library. */
function verify(r: { headers: Record<string, string>; body: string }, jsonParse = true): unknown {
  return new Webhook(SIGNING_SECRET).verify(r.body, r.headers, { jsonParse });
}

describe("endpoint auth", () => {
  it("basic: Authorization is Basic base64(username:password)", () => {
    const r = build(integration({ auth: { type: "basic", username: "alice", passwordSecret: "CRM_PASSWORD" } }), { CRM_PASSWORD: "pa ss:wörd" });
    expect(r.headers.authorization).toBe(`Basic ${Buffer.from("alice:pa ss:wörd", "utf8").toString("base64")}`);
  });

  it("bearer: Authorization is Bearer <token>", () => {
    expect(build(integration({ auth: { type: "bearer", tokenSecret: "TOKEN" } }), { TOKEN: "tok_abc" }).headers.authorization).toBe("Bearer tok_abc");
  });

  it("a custom header carries the secret under the configured name", () => {
    const r = build(integration({ auth: { type: "header", name: "X-Api-Key", valueSecret: "KEY" } }), { KEY: "k-123" });
    expect(r.headers["x-api-key"]).toBe("k-123");
    expect(r.headers.authorization).toBeUndefined();
  });

  it("a query key is added to the URL, encoded, keeping the template's parameters", () => {
    const r = build(integration({ template: { url: "https://crm.example.com/in?src=hw" }, auth: { type: "query", name: "api_key", valueSecret: "KEY" } }), { KEY: "a&b=c d" });
    const url = new URL(r.url);
    expect(url.searchParams.get("api_key")).toBe("a&b=c d");
    expect(url.searchParams.get("src")).toBe("hw");
    expect([...url.searchParams.keys()]).toEqual(["src", "api_key"]);
  });

  it("a template header cannot replace the auth header", () => {
    const r = build(integration({ template: { headers: { Authorization: "Bearer forged" } }, auth: { type: "bearer", tokenSecret: "TOKEN" } }), { TOKEN: "real" });
    expect(r.headers.authorization).toBe("Bearer real");
  });

  it("a secret missing at send time or holding a line break fails the render", () => {
    const missing = () => build(integration({ auth: { type: "bearer", tokenSecret: "GONE" } }), {});
    expect(missing).toThrow(HookwardenError);
    expect(missing).toThrow(/no secret named GONE/);
    const crlf = () => build(integration({ auth: { type: "header", name: "X-Key", valueSecret: "KEY" } }), { KEY: "v\r\nX-Injected: 1" });
    expect(crlf).toThrow(/line break/);
  });
});

describe("signing", () => {
  it("signs the plain Svix request: payload verbatim, verifiable by standardwebhooks", () => {
    const r = build(integration());
    expect(r.method).toBe("POST");
    expect(r.url).toBe("https://crm.example.com/hooks");
    expect(r.body).toBe(PAYLOAD);
    expect(r.headers["content-type"]).toBe("application/json");
    expect(r.headers["webhook-id"]).toBe("msg_2b3c");
    expect(verify(r)).toEqual(JSON.parse(PAYLOAD));
  });

  it("signs the templated body, and a changed body does not verify", () => {
    const r = build(integration({ template: { body: { id: "{{payload.ticket.id}}", kind: "{{event.type}}" } } }));
    expect(r.body).toBe('{"id":"T-7","kind":"ticket.created"}');
    expect(verify(r)).toEqual({ id: "T-7", kind: "ticket.created" });
    expect(() => verify({ ...r, body: r.body.replace("T-7", "T-8") })).toThrow(WebhookVerificationError);
  });

  it("sends no signature for an unsigned endpoint", () => {
    expect(build(integration(), {}, { ep: { url: "https://crm.example.com/hooks", signature_scheme: "none" } }).headers["webhook-signature"]).toBeUndefined();
  });
});

describe("body encryption", () => {
  const KEY_SIZE: Record<BodyCipher, number> = { "aes-256-gcm": 32, "chacha20-poly1305": 32, "aes-256-cbc": 32, "aes-128-cbc": 16 };

  function decrypt(cipher: BodyCipher, key: Buffer, ivHex: string, b64: string): string {
    const raw = Buffer.from(b64, "base64");
    const iv = Buffer.from(ivHex, "hex");
    if (cipher === "aes-256-gcm" || cipher === "chacha20-poly1305") {
      const d = createDecipheriv(cipher as "aes-256-gcm", key, iv, { authTagLength: 16 });
      d.setAuthTag(raw.subarray(raw.length - 16));
      return Buffer.concat([d.update(raw.subarray(0, raw.length - 16)), d.final()]).toString("utf8");
    }
    const d = createDecipheriv(cipher, key, iv);
    return Buffer.concat([d.update(raw), d.final()]).toString("utf8");
  }

  it.each([["aes-256-gcm"], ["chacha20-poly1305"], ["aes-256-cbc"], ["aes-128-cbc"]] as [BodyCipher][])(
    "%s: headers name the cipher and IV, {{iv}} equals it, the body decrypts and the signature covers the ciphertext",
    (cipher) => {
      const key = randomBytes(KEY_SIZE[cipher]);
      const template: RequestTemplateDef = { url: "https://crm.example.com/hook?iv={{iv}}", body: { id: "{{payload.ticket.id}}" } };
      const r = build(integration({ template, encryption: { cipher, keySecret: "BODY_KEY", randomIv: true } }), { BODY_KEY: key.toString("base64") });
      const ivHex = r.headers["webhook-encryption-iv"]!;
      expect(r.headers["webhook-encryption"]).toBe(cipher);
      expect(ivHex).toMatch(new RegExp(`^[0-9a-f]{${cipher.includes("cbc") ? 32 : 24}}$`));
      expect(new URL(r.url).searchParams.get("iv")).toBe(ivHex);
      expect(r.headers["content-type"]).toBe("text/plain; charset=utf-8");
      expect(r.body).not.toContain("T-7");
      expect(decrypt(cipher, key, ivHex, r.body)).toBe('{"id":"T-7"}');
      expect(() => verify(r, false)).not.toThrow();
      expect(() => verify({ ...r, body: '{"id":"T-7"}' }, false)).toThrow(WebhookVerificationError);
      expect(r.recorded.body).toBe('{"id":"T-7"}');
    },
  );

  it("uses a new IV for every request, or zeros with randomIv: false", () => {
    const key = randomBytes(32).toString("base64");
    const enc = (randomIv: boolean) => build(integration({ encryption: { cipher: "aes-256-cbc", keySecret: "K", randomIv } }), { K: key });
    expect(enc(true).headers["webhook-encryption-iv"]).not.toBe(enc(true).headers["webhook-encryption-iv"]);
    expect(enc(false).headers["webhook-encryption-iv"]).toBe("00".repeat(16));
    expect(enc(false).body).toBe(enc(false).body);
  });

  it("refuses a vault key of the wrong size", () => {
    expect(() => build(integration({ encryption: { cipher: "aes-128-cbc", keySecret: "K", randomIv: true } }), { K: randomBytes(32).toString("base64") })).toThrow(
      expect.objectContaining({ code: "E_ENCRYPTION_INVALID" }),
    );
  });
});

describe("what is recorded", () => {
  const everywhere: Integration = integration({
    template: {
      url: "https://crm.example.com/k/{{secrets.CANARY}}/x",
      query: { q: "{{secrets.CANARY}}", b: "{{secrets.CANARY | base64}}" },
      headers: { "X-Tag": "c={{secrets.CANARY}}", "X-Xml": "{{secrets.CANARY | xml}}" },
      body: { raw: "{{secrets.CANARY}}", text: "say {{secrets.CANARY | json}}", x: "<a>{{secrets.CANARY | xml}}</a>", u: "{{secrets.CANARY | url | base64}}" },
    },
    auth: { type: "basic", username: "alice", passwordSecret: "CANARY" },
  });

  it("masks every secret in the URL, headers and body, while the request itself carries them", () => {
    const r = build(everywhere, { CANARY }, { customHeaders: { "x-api-key": "custom-header-secret", "x-visible": "ok" } });
    const sent = JSON.stringify({ url: r.url, headers: r.headers, body: r.body });
    expect(JSON.parse(r.body).raw).toBe(CANARY);
    expect(new URL(r.url).searchParams.get("q")).toBe(CANARY);
    expect(sent).toContain("custom-header-secret");

    const recorded = JSON.stringify(r.recorded);
    const forms = [
      CANARY,
      encodeURIComponent(CANARY),
      new URLSearchParams({ q: CANARY }).toString().slice(2),
      JSON.stringify(CANARY).slice(1, -1),
      Buffer.from(CANARY).toString("base64"),
      Buffer.from(`alice:${CANARY}`).toString("base64"),
      "canary-Zq9&amp;",
      "custom-header-secret",
    ];
    for (const f of forms) expect(recorded, f).not.toContain(f);
    expect(recorded).not.toContain("canary");
    expect(r.recorded.headers.authorization).toBe("******");
    expect(r.recorded.headers["x-tag"]).toBe("c=******");
    expect(r.recorded.headers["x-api-key"]).toBe("******");
    expect(r.recorded.headers["x-visible"]).toBe("ok");
    expect(new URL(r.recorded.url).pathname).toBe("/k/******/x");
    expect(JSON.parse(r.recorded.body)).toEqual({ raw: "******", text: 'say "******"', x: "<a>******</a>", u: "******" });
    expect(r.redactor.redact(`upstream said ${CANARY}`)).toBe("upstream said ******");
  });

  it("preview shows ****** wherever a secret would be, without revealing any", () => {
    const canary = new CountingSecret(CANARY);
    const key = new CountingSecret(randomBytes(32).toString("base64"));
    const withEncryption = { ...everywhere, template: { ...everywhere.template!, url: "https://crm.example.com/k/{{secrets.CANARY}}/x?iv={{iv}}" } };
    const r = build({ ...withEncryption, encryption: { cipher: "aes-256-gcm", keySecret: "KEY", randomIv: true } }, { CANARY: canary, KEY: key }, { preview: true });
    expect(canary.reveals + key.reveals).toBe(0);
    const all = JSON.stringify(r);
    expect(all).not.toContain("canary");
    expect(new URL(r.url).pathname).toBe("/k/******/x");
    expect(new URL(r.url).searchParams.get("q")).toBe("******");
    expect(new URL(r.url).searchParams.get("b")).toBe("******");
    expect(r.headers.authorization).toBe("Basic ******");
    expect(r.headers["x-tag"]).toBe("c=******");
    expect(r.headers["webhook-signature"]).toBe("v1,******");
    expect(r.headers["webhook-encryption"]).toBe("aes-256-gcm");
    expect(new URL(r.url).searchParams.get("iv")).toBe(r.headers["webhook-encryption-iv"]);
    expect(JSON.parse(r.body)).toEqual({ raw: "******", text: "say ******", x: "<a>******</a>", u: "******" });
  });

  it("preview works with no secret values at all (as the preview API calls it)", () => {
    const r = build(integration({ ...everywhere, auth: { type: "query", name: "key", valueSecret: "CANARY" } }), {}, { preview: true, compiled: compileTemplate(everywhere.template!, "https://crm.example.com/hooks") });
    expect(new URL(r.url).searchParams.get("key")).toBe("******");
    expect(JSON.parse(r.body).raw).toBe("******");
  });
});
