import { createHash, verify as edVerify, createPublicKey, type KeyObject } from "node:crypto";
import { signedContent } from "../../signing/standard-webhooks.js";
import type { SecretValue } from "../../vault/secret-value.js";
import type { ReceivedRequest, VerificationConfig, VerifyResult } from "../types.js";
import { digestEquals, fromBase64, fromHex, hmac, withinWindow } from "./compare.js";

/** Replay windows, in seconds, where the scheme signs a timestamp (each provider's documented value). */
export const REPLAY_WINDOW = { stripe: 300, slack: 300, "standard-webhooks": 300 } as const;

const fail = (reason: string): VerifyResult => ({ ok: false, reason });
const ok = (deliveryId: string | undefined): VerifyResult => ({ ok: true, deliveryId });

function jsonField(body: Buffer, field: string): string | undefined {
  try {
    const v = (JSON.parse(body.toString("utf8")) as Record<string, unknown>)[field];
    return typeof v === "string" && v.length > 0 && v.length <= 256 ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`, HMAC-SHA256 of `${t}.${body}`
 * keyed with the endpoint secret as text (https://docs.stripe.com/webhooks#verify-manually).
 * Several v1 entries appear while the sender rolls its secret.
 */
function stripe(secret: string, req: ReceivedRequest): VerifyResult {
  const header = req.headers["stripe-signature"];
  if (!header) return fail("missing Stripe-Signature header");
  let t: number | undefined;
  const sigs: string[] = [];
  for (const part of header.split(",")) {
    const [k, v = ""] = part.trim().split("=");
    if (k === "t") t = Number(v);
    else if (k === "v1") sigs.push(v);
  }
  if (t === undefined || sigs.length === 0) return fail("Stripe-Signature lacks t= or v1=");
  if (!withinWindow(t, req.receivedAt, REPLAY_WINDOW.stripe)) return fail("timestamp outside the 300 s replay window");
  const expected = hmac("sha256", secret, `${t}.`, req.body);
  if (!sigs.some((s) => digestEquals(expected, fromHex(s)))) return fail("no v1 signature matched");
  return ok(jsonField(req.body, "id"));
}

/** GitHub: `X-Hub-Signature-256: sha256=<hex>` of the body (https://docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries). */
function github(secret: string, req: ReceivedRequest): VerifyResult {
  const header = req.headers["x-hub-signature-256"];
  if (!header) return fail("missing X-Hub-Signature-256 header");
  if (!header.startsWith("sha256=")) return fail("X-Hub-Signature-256 is not sha256=<hex>");
  if (!digestEquals(hmac("sha256", secret, req.body), fromHex(header.slice(7)))) return fail("signature did not match");
  return ok(req.headers["x-github-delivery"]);
}

/** Shopify: `X-Shopify-Hmac-Sha256: <base64>` of the body, keyed with the app's client secret. */
function shopify(secret: string, req: ReceivedRequest): VerifyResult {
  const header = req.headers["x-shopify-hmac-sha256"];
  if (!header) return fail("missing X-Shopify-Hmac-Sha256 header");
  if (!digestEquals(hmac("sha256", secret, req.body), fromBase64(header))) return fail("signature did not match");
  return ok(req.headers["x-shopify-webhook-id"] ?? req.headers["x-shopify-event-id"]);
}

/**
 * Slack: `X-Slack-Signature: v0=<hex>` of `v0:${X-Slack-Request-Timestamp}:${body}`
 * (https://api.slack.com/authentication/verifying-requests-from-slack), 5-minute window.
 */
function slack(secret: string, req: ReceivedRequest): VerifyResult {
  const header = req.headers["x-slack-signature"];
  const ts = req.headers["x-slack-request-timestamp"];
  if (!header || !ts) return fail("missing X-Slack-Signature or X-Slack-Request-Timestamp header");
  if (!/^\d+$/.test(ts) || !withinWindow(Number(ts), req.receivedAt, REPLAY_WINDOW.slack)) return fail("timestamp outside the 300 s replay window");
  if (!header.startsWith("v0=")) return fail("X-Slack-Signature is not v0=<hex>");
  if (!digestEquals(hmac("sha256", secret, `v0:${ts}:`, req.body), fromHex(header.slice(3)))) return fail("signature did not match");
  return ok(jsonField(req.body, "event_id"));
}

function splitPort(url: string): { withPort: string; withoutPort: string } {
  const m = /^(https?:\/\/)([^/?#]*)(.*)$/i.exec(url);
  if (!m) return { withPort: url, withoutPort: url };
  const [, scheme = "", authority = "", rest = ""] = m;
  // A colon in `user:pass@` is not a port; one inside an IPv6 literal's brackets is not either.
  const userInfo = authority.slice(0, authority.lastIndexOf("@") + 1);
  const hostPort = authority.slice(userInfo.length);
  const portAt = hostPort.indexOf(":", hostPort.lastIndexOf("]") + 1);
  const host = userInfo + (portAt === -1 ? hostPort : hostPort.slice(0, portAt));
  const port = portAt === -1 ? (scheme.toLowerCase() === "https://" ? ":443" : ":80") : hostPort.slice(portAt);
  return { withPort: `${scheme}${host}${port}${rest}`, withoutPort: `${scheme}${host}${rest}` };
}

/**
 * Twilio signs the URL as configured, so `https://user:pass@host/...` (HTTP basic auth, documented
 * at twilio.com/docs/usage/security) is signed with its credentials, which reach Hookwarden only
 * in the Authorization header.
 */
function withBasicCredentials(url: string, authorization: string | undefined): string | undefined {
  const b64 = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization ?? "")?.[1];
  if (!b64) return undefined;
  const credentials = Buffer.from(b64, "base64").toString("utf8");
  const m = /^(https?:\/\/)(.*)$/i.exec(url);
  return m && credentials.includes(":") ? `${m[1]}${credentials}@${m[2]}` : undefined;
}

/**
 * Twilio: `X-Twilio-Signature: base64(HMAC-SHA1(authToken, url + sorted(name+value)))` over the
 * form parameters; JSON requests sign only the URL, which carries `bodySHA256` of the body
 * (https://www.twilio.com/docs/usage/security#validating-requests). Twilio may sign the URL with
 * or without the default port, so both are tried, as its own library does.
 */
function twilio(secret: string, req: ReceivedRequest): VerifyResult {
  const header = req.headers["x-twilio-signature"];
  if (!header) return fail("missing X-Twilio-Signature header");
  const received = fromBase64(header);
  let bodyHash: string | null;
  try {
    bodyHash = new URL(req.publicUrl).searchParams.get("bodySHA256");
  } catch {
    // The URL is rebuilt from the Host header, which the caller controls.
    return fail("the request URL cannot be parsed");
  }
  let params: [string, string][] = [];
  if (bodyHash !== null) {
    const actual = createHash("sha256").update(req.body).digest();
    if (!digestEquals(actual, fromHex(bodyHash))) return fail("bodySHA256 does not match the body");
  } else if ((req.headers["content-type"] ?? "").toLowerCase().startsWith("application/x-www-form-urlencoded")) {
    // Media types are case-insensitive (RFC 9110 §8.3.1).
    params = [...new URLSearchParams(req.body.toString("utf8"))];
  }
  const grouped = new Map<string, string[]>();
  for (const [k, v] of params) grouped.set(k, [...(grouped.get(k) ?? []), v]);
  const data = [...grouped.keys()]
    .sort()
    .map((k) => [...new Set(grouped.get(k))].sort().map((v) => k + v).join(""))
    .join("");
  const urls = [req.publicUrl, withBasicCredentials(req.publicUrl, req.headers.authorization)].filter((u) => u !== undefined);
  const candidates = urls.flatMap((u) => Object.values(splitPort(u)));
  const match = candidates.some((u) => digestEquals(hmac("sha1", secret, u, data), received));
  if (!match) return fail("signature did not match");
  return ok(req.headers["i-twilio-idempotency-token"]);
}

/**
 * Standard Webhooks (https://www.standardwebhooks.com): `v1,` HMAC under a `whsec_` secret, or
 * `v1a,` ed25519 when the input holds the sender's `whpk_` public key; 5-minute window.
 */
function standardWebhooks(secret: string, req: ReceivedRequest): VerifyResult {
  const id = req.headers["webhook-id"];
  const ts = req.headers["webhook-timestamp"];
  const sig = req.headers["webhook-signature"];
  if (!id || !ts || !sig) return fail("missing webhook-id, webhook-timestamp or webhook-signature header");
  if (!/^\d+$/.test(ts) || !withinWindow(Number(ts), req.receivedAt, REPLAY_WINDOW["standard-webhooks"])) return fail("timestamp outside the 300 s replay window");
  const content = signedContent(id, Number(ts), req.body);
  const entries = sig.split(" ").map((e) => e.split(",") as [string, string | undefined]);
  if (secret.startsWith("whpk_")) {
    let key: KeyObject;
    try {
      key = createPublicKey({ key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), Buffer.from(secret.slice(5), "base64")]), format: "der", type: "spki" });
    } catch {
      // A key of the wrong length would otherwise throw on every request (a 500, not a 401).
      return fail("the input's whpk_ key is not an ed25519 public key");
    }
    const good = entries.some(([v, s]) => {
      if (v !== "v1a" || s === undefined) return false;
      try {
        return edVerify(null, content, key, fromBase64(s));
      } catch {
        return false;
      }
    });
    return good ? ok(id) : fail("no v1a signature matched");
  }
  const expected = hmac("sha256", Buffer.from(secret.replace(/^whsec_/, ""), "base64"), content);
  const good = entries.some(([v, s]) => v === "v1" && s !== undefined && digestEquals(expected, fromBase64(s)));
  return good ? ok(id) : fail("no v1 signature matched");
}

/** A generic HMAC-SHA256 of the body in a header of the operator's choosing. */
function genericHmac(cfg: VerificationConfig, secret: string, req: ReceivedRequest): VerifyResult {
  const name = (cfg.header ?? "").toLowerCase();
  const header = req.headers[name];
  if (!header) return fail(`missing ${cfg.header} header`);
  const prefix = cfg.prefix ?? "";
  if (!header.startsWith(prefix)) return fail(`${cfg.header} does not start with ${prefix}`);
  const text = header.slice(prefix.length).trim();
  const received = cfg.encoding === "base64" ? fromBase64(text) : fromHex(text);
  if (!digestEquals(hmac("sha256", secret, req.body), received)) return fail("signature did not match");
  return ok(undefined);
}

/**
 * Checks a request against its input's verification scheme. Every digest comparison is constant
 * time; every scheme with a signed timestamp enforces its replay window.
 */
export function verifySignature(cfg: VerificationConfig, secret: SecretValue | undefined, req: ReceivedRequest): VerifyResult {
  if (cfg.type === "none") return ok(undefined);
  if (!secret) return fail("the input has no verification secret");
  const s = secret.reveal();
  switch (cfg.type) {
    case "stripe":
      return stripe(s, req);
    case "github":
      return github(s, req);
    case "shopify":
      return shopify(s, req);
    case "slack":
      return slack(s, req);
    case "twilio":
      return twilio(s, req);
    case "standard-webhooks":
      return standardWebhooks(s, req);
    case "hmac-sha256":
      return genericHmac(cfg, s, req);
  }
}

/** The provider's delivery id for dedupe when the scheme has none: common idempotency headers. */
export function fallbackDeliveryId(req: ReceivedRequest): string | undefined {
  const v = req.headers["webhook-id"] ?? req.headers["idempotency-key"];
  return v && v.length <= 256 ? v : undefined;
}
