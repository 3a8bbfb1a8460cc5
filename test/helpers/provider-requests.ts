import { createHmac, generateKeyPairSync, randomUUID, sign as edSign } from "node:crypto";
import { request } from "node:http";
import { sign as githubSign } from "@octokit/webhooks-methods";
import { Webhook as StandardWebhook } from "standardwebhooks";
import Stripe from "stripe";
import { getExpectedBodyHash, getExpectedTwilioSignature } from "twilio/lib/webhooks/webhooks.js";

/**
 * Inbound requests as each provider sends them, signed by the provider's own package (stripe,
 * @octokit/webhooks-methods, twilio, standardwebhooks) or, for Shopify and Slack, by the documented
 * algorithm computed here with node:crypto; each provider also yields forged or broken variants
 * (a changed byte, a wrong secret, a stale timestamp where the scheme signs one, a missing header).
 */

export interface Reply {
  status: number;
  text: string;
  json: any;
}

/** One request with node:http, so the Host header and the body bytes are exactly as given. */
export function post(url: string, opts: { headers?: Record<string, string>; body?: string; method?: string } = {}): Promise<Reply> {
  const body = Buffer.from(opts.body ?? "", "utf8");
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? "POST", headers: { "content-length": String(body.length), ...opts.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, text, json });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

export async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Changes one byte of a signed body (the first digit), as a tampering proxy would. */
export function changeOneByte(body: string): string {
  const i = body.search(/\d/);
  if (i < 0) throw new Error("body has no digit to change");
  return body.slice(0, i) + String((Number(body[i]) + 1) % 10) + body.slice(i + 1);
}

export const nowSec = () => Math.floor(Date.now() / 1000);

export interface Signed {
  headers: Record<string, string>;
  body: string;
  /** Appended to the input URL, e.g. "?src=twilio". */
  query?: string;
}

export interface Provider {
  name: string;
  verification: Record<string, unknown>;
  /** A request the provider would send to `url` (the input's URL as the API reports it). */
  valid: (url: string, marker: string) => Promise<Signed>;
  /** Forged or broken requests, each with its own marker. */
  failures: (url: string, marker: (what: string) => string) => Promise<Record<string, Signed>>;
}

const STRIPE = new Stripe("sk_test_x");
const stripeSecret = "whsec_test_3pQ9mBFk2mZ1V4LxQe9s7YtR";
const stripeBody = (marker: string) => JSON.stringify({ id: `evt_${marker.replace(/-/g, "")}`, object: "event", type: "charge.succeeded", data: { object: { amount: 4200, description: marker } } });
const stripeHeader = (body: string, secret = stripeSecret, timestamp = nowSec()) => STRIPE.webhooks.generateTestHeaderString({ payload: body, secret, timestamp });

export const githubSecret = "gh-secret-0b7e2d";
export const github = async (body: string, secret = githubSecret) => ({ "x-hub-signature-256": await githubSign(secret, body), "x-github-delivery": randomUUID(), "x-github-event": "push", "content-type": "application/json" });
export const githubBody = (marker: string) => JSON.stringify({ ref: "refs/heads/main", commits: [{ id: 1, message: `Grüße ${marker}` }] });

const shopifySecret = "shpss_9a8b7c6d5e4f";
const shopify = (body: string, secret = shopifySecret) => ({
  "x-shopify-hmac-sha256": createHmac("sha256", secret).update(body, "utf8").digest("base64"),
  "x-shopify-webhook-id": randomUUID(),
  "x-shopify-topic": "orders/create",
  "content-type": "application/json",
});
const shopifyBody = (marker: string) => JSON.stringify({ id: 450789469, note: `naïve ${marker}` });

const slackSecret = "c0ffee1234567890abcdef1234567890";
const slack = (body: string, secret = slackSecret, ts = nowSec()) => ({
  "x-slack-signature": `v0=${createHmac("sha256", secret).update(`v0:${ts}:${body}`).digest("hex")}`,
  "x-slack-request-timestamp": String(ts),
  "content-type": "application/json",
});
const slackBody = (marker: string) => JSON.stringify({ type: "event_callback", event_id: `Ev${marker.slice(0, 8)}`, event: { type: "app_mention", text: `héllo ${marker} 1` } });

export const twilioToken = "5e0b7a2c9d4f1e3a8b6c0d2e4f6a8b1c";
export const twilioParams = (marker: string) => ({ MessageSid: "SM0123456789abcdef0123456789abcdef", From: "+14155550100", To: "+14155550199", Body: `Hi & ✓ ${marker}` });
export const twilioForm = (url: string, params: Record<string, string>, token = twilioToken) => ({
  headers: { "x-twilio-signature": getExpectedTwilioSignature(token, url, params), "content-type": "application/x-www-form-urlencoded; charset=UTF-8", "i-twilio-idempotency-token": randomUUID() },
  body: new URLSearchParams(params).toString(),
});
const twilioJson = (url: string, body: string, token = twilioToken) => {
  const query = `?bodySHA256=${getExpectedBodyHash(body)}`;
  return { headers: { "x-twilio-signature": getExpectedTwilioSignature(token, url + query, {}), "content-type": "application/json" }, body, query };
};
const twilioJsonBody = (marker: string) => JSON.stringify({ EventType: "onMessageAdded", Index: 7, Body: marker });

const swSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const swBody = (marker: string) => JSON.stringify({ type: "invoice.paid", data: { total: 1999, note: marker } });
const sw = (body: string, secret = swSecret, ts = nowSec(), id = `msg_${randomUUID()}`) => ({
  "webhook-id": id,
  "webhook-timestamp": String(ts),
  "webhook-signature": new StandardWebhook(secret).sign(id, new Date(ts * 1000), body),
  "content-type": "application/json",
});

const ed = generateKeyPairSync("ed25519");
const edOther = generateKeyPairSync("ed25519");
export const whpk = `whpk_${ed.publicKey.export({ format: "der", type: "spki" }).subarray(-32).toString("base64")}`;
const swa = (body: string, key = ed.privateKey, ts = nowSec(), id = `msg_${randomUUID()}`) => ({
  "webhook-id": id,
  "webhook-timestamp": String(ts),
  "webhook-signature": `v1a,${edSign(null, Buffer.from(`${id}.${ts}.${body}`, "utf8"), key).toString("base64")}`,
  "content-type": "application/json",
});

const hmacSecret = "generic-1f2e3d4c";
const hmacBody = (marker: string) => JSON.stringify({ build: 12, status: "passed", marker });
const hmacOf = (body: string, encoding: "hex" | "base64", secret = hmacSecret) => createHmac("sha256", secret).update(body).digest(encoding);

export function without(headers: Record<string, string>, name: string): Record<string, string> {
  const { [name]: _gone, ...rest } = headers;
  return rest;
}

export const PROVIDERS: Provider[] = [
  {
    name: "stripe",
    verification: { type: "stripe", secret: stripeSecret },
    valid: async (_url, m) => {
      const body = stripeBody(m);
      return { headers: { "stripe-signature": stripeHeader(body), "content-type": "application/json" }, body };
    },
    failures: async (_url, m) => {
      const b = (w: string) => stripeBody(m(w));
      const changed = b("changed");
      const wrong = b("wrong"), stale = b("stale"), missing = b("missing");
      return {
        "a changed byte": { headers: { "stripe-signature": stripeHeader(changed) }, body: changeOneByte(changed) },
        "a wrong secret": { headers: { "stripe-signature": stripeHeader(wrong, "whsec_not_the_endpoint_secret") }, body: wrong },
        "a stale timestamp": { headers: { "stripe-signature": stripeHeader(stale, stripeSecret, nowSec() - 600) }, body: stale },
        "a missing header": { headers: { "content-type": "application/json" }, body: missing },
      };
    },
  },
  {
    name: "github",
    verification: { type: "github", secret: githubSecret },
    valid: async (_url, m) => {
      const body = githubBody(m);
      return { headers: await github(body), body };
    },
    failures: async (_url, m) => {
      const changed = githubBody(m("changed")), wrong = githubBody(m("wrong")), missing = githubBody(m("missing"));
      return {
        "a changed byte": { headers: await github(changed), body: changeOneByte(changed) },
        "a wrong secret": { headers: await github(wrong, "someone-else"), body: wrong },
        "a missing header": { headers: without(await github(missing), "x-hub-signature-256"), body: missing },
      };
    },
  },
  {
    name: "shopify",
    verification: { type: "shopify", secret: shopifySecret },
    valid: async (_url, m) => {
      const body = shopifyBody(m);
      return { headers: shopify(body), body };
    },
    failures: async (_url, m) => {
      const changed = shopifyBody(m("changed")), wrong = shopifyBody(m("wrong")), missing = shopifyBody(m("missing"));
      return {
        "a changed byte": { headers: shopify(changed), body: changeOneByte(changed) },
        "a wrong secret": { headers: shopify(wrong, "shpss_other"), body: wrong },
        "a missing header": { headers: without(shopify(missing), "x-shopify-hmac-sha256"), body: missing },
      };
    },
  },
  {
    name: "slack",
    verification: { type: "slack", secret: slackSecret },
    valid: async (_url, m) => {
      const body = slackBody(m);
      return { headers: slack(body), body };
    },
    failures: async (_url, m) => {
      const changed = slackBody(m("changed")), wrong = slackBody(m("wrong")), stale = slackBody(m("stale")), missing = slackBody(m("missing"));
      return {
        "a changed byte": { headers: slack(changed), body: changeOneByte(changed) },
        "a wrong secret": { headers: slack(wrong, "ffffffffffffffffffffffffffffffff"), body: wrong },
        "a stale timestamp": { headers: slack(stale, slackSecret, nowSec() - 600), body: stale },
        "a missing header": { headers: without(slack(missing), "x-slack-request-timestamp"), body: missing },
      };
    },
  },
  {
    name: "twilio-form",
    verification: { type: "twilio", secret: twilioToken },
    // Twilio signs the URL it was configured with: the one the API reports for the input.
    valid: async (url, m) => ({ ...twilioForm(`${url}?src=twilio`, twilioParams(m)), query: "?src=twilio" }),
    failures: async (url, m) => {
      const changed = twilioForm(url, twilioParams(m("changed")));
      return {
        "a changed byte": { ...changed, body: changeOneByte(changed.body) },
        "a wrong secret": twilioForm(url, twilioParams(m("wrong")), "00000000000000000000000000000000"),
        "a signature for another URL": { ...twilioForm(`${url}?src=elsewhere`, twilioParams(m("url"))), query: "?src=twilio" },
        "a missing header": (({ headers, body }) => ({ headers: without(headers, "x-twilio-signature"), body }))(twilioForm(url, twilioParams(m("missing")))),
      };
    },
  },
  {
    name: "twilio-json",
    verification: { type: "twilio", secret: twilioToken },
    valid: async (url, m) => twilioJson(url, twilioJsonBody(m)),
    failures: async (url, m) => {
      const changed = twilioJson(url, twilioJsonBody(m("changed")));
      const missing = twilioJson(url, twilioJsonBody(m("missing")));
      return {
        "a changed byte": { ...changed, body: changeOneByte(changed.body) },
        "a wrong secret": twilioJson(url, twilioJsonBody(m("wrong")), "00000000000000000000000000000000"),
        "a missing header": { ...missing, headers: without(missing.headers, "x-twilio-signature") },
      };
    },
  },
  {
    name: "standard-webhooks-v1",
    verification: { type: "standard-webhooks", secret: swSecret },
    valid: async (_url, m) => {
      const body = swBody(m);
      return { headers: sw(body), body };
    },
    failures: async (_url, m) => {
      const changed = swBody(m("changed")), wrong = swBody(m("wrong")), stale = swBody(m("stale")), missing = swBody(m("missing"));
      return {
        "a changed byte": { headers: sw(changed), body: changeOneByte(changed) },
        "a wrong secret": { headers: sw(wrong, "whsec_dGhpc2lzYW5vdGhlcmhpZ2hlbnRyb3B5a2V5Pz8hIQ=="), body: wrong },
        "a stale timestamp": { headers: sw(stale, swSecret, nowSec() - 600), body: stale },
        "a missing header": { headers: without(sw(missing), "webhook-id"), body: missing },
      };
    },
  },
  {
    name: "standard-webhooks-v1a",
    verification: { type: "standard-webhooks", secret: whpk },
    valid: async (_url, m) => {
      const body = swBody(m);
      return { headers: swa(body), body };
    },
    failures: async (_url, m) => {
      const changed = swBody(m("changed")), wrong = swBody(m("wrong")), stale = swBody(m("stale")), missing = swBody(m("missing"));
      return {
        "a changed byte": { headers: swa(changed), body: changeOneByte(changed) },
        "another key": { headers: swa(wrong, edOther.privateKey), body: wrong },
        "a stale timestamp": { headers: swa(stale, ed.privateKey, nowSec() - 600), body: stale },
        "a missing header": { headers: without(swa(missing), "webhook-signature"), body: missing },
      };
    },
  },
  ...(
    [
      { name: "hmac-sha256-hex", header: "x-signature", encoding: "hex", prefix: "" },
      { name: "hmac-sha256-base64", header: "x-signature", encoding: "base64", prefix: "" },
      { name: "hmac-sha256-prefixed", header: "x-hub-signature-256", encoding: "hex", prefix: "sha256=" },
    ] as const
  ).map(
    (c): Provider => ({
      name: c.name,
      verification: { type: "hmac-sha256", secret: hmacSecret, header: c.header, encoding: c.encoding, prefix: c.prefix },
      valid: async (_url, m) => {
        const body = hmacBody(m);
        return { headers: { [c.header]: c.prefix + hmacOf(body, c.encoding), "content-type": "application/json" }, body };
      },
      failures: async (_url, m) => {
        const changed = hmacBody(m("changed")), wrong = hmacBody(m("wrong")), missing = hmacBody(m("missing"));
        return {
          "a changed byte": { headers: { [c.header]: c.prefix + hmacOf(changed, c.encoding) }, body: changeOneByte(changed) },
          "a wrong secret": { headers: { [c.header]: c.prefix + hmacOf(wrong, c.encoding, "not-it") }, body: wrong },
          "a missing header": { headers: { "content-type": "application/json" }, body: missing },
        };
      },
    }),
  ),
];
