import type { EndpointRow } from "../endpoints/index.js";
import { HookwardenError } from "../errors/index.js";
import type { Integration } from "../endpoints/integration.js";
import type { MessageRow } from "../messages/index.js";
import { Redactor } from "../redaction/index.js";
import { isSensitiveHeader } from "../redaction/sensitive-headers.js";
import { signatureHeader, type SigningKey } from "../signing/standard-webhooks.js";
import type { RenderScope } from "../templates/render.js";
import { renderRequest, type CompiledTemplate, type HttpMethod } from "../templates/request.js";
import { SecretValue } from "../vault/secret-value.js";
import { encryptBody, newIv, parseBodyKey } from "../endpoints/body-encryption.js";

export const USER_AGENT = "Hookwarden/0.1 (+https://www.standardwebhooks.com)";
const MASK = SecretValue.MASK;
/** `<auth-scheme> ******` (RFC 9110 §11.4): a credential rendered with its secret masked. */
const MASKED_CREDENTIAL = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ \*{6}$/;

export interface BuildInput {
  ep: Pick<EndpointRow, "url" | "signature_scheme">;
  msg: Pick<MessageRow, "id" | "event_id" | "event_type" | "payload" | "created_at">;
  integration: Integration;
  compiled: CompiledTemplate | undefined;
  /** The endpoint's custom (Svix-style) headers, decrypted. */
  customHeaders: Record<string, string>;
  signingKeys: readonly SigningKey[];
  /** Vault secrets the endpoint references, decrypted. Ignored in preview. */
  secrets: ReadonlyMap<string, SecretValue>;
  /** `webhook-timestamp`, seconds. */
  timestamp: number;
  outputLimit: number;
  preview?: boolean;
}

export interface BuiltRequest {
  method: HttpMethod;
  url: string;
  headers: Record<string, string>;
  body: string;
  /** What the attempt record keeps: the same request with every secret masked. */
  recorded: { method: HttpMethod; url: string; headers: Record<string, string>; body: string };
  redactor: Redactor;
}

/**
 * Builds the exact request of one attempt: template (or the plain Svix request), auth, optional
 * body encryption, custom headers, then the Standard Webhooks headers signed over the final body.
 * In preview mode no secret is revealed: each renders as `******`.
 */
export function buildRequest(input: BuildInput): BuiltRequest {
  const { integration: i, msg, preview = false } = input;
  const used = new Set<string>();
  const iv = i.encryption ? newIv(i.encryption.cipher, i.encryption.randomIv) : undefined;
  const scope: RenderScope = {
    eventType: msg.event_type,
    eventId: msg.event_id,
    messageId: msg.id,
    messageTimestamp: msg.created_at,
    timestamp: input.timestamp,
    payload: input.compiled ? JSON.parse(msg.payload) : undefined,
    secret: (name) => input.secrets.get(name),
    iv: iv?.toString("hex"),
    preview,
    usedSecrets: used,
    budget: { remaining: input.outputLimit },
  };
  const rendered = input.compiled
    ? renderRequest(input.compiled, scope, msg.payload)
    : { method: "POST" as const, url: input.ep.url, headers: { "content-type": "application/json" }, body: msg.payload };

  const reveal = (name: string): string => {
    if (preview) return MASK;
    const v = input.secrets.get(name)?.reveal();
    if (v === undefined) throw new HookwardenError("E_TEMPLATE_RENDER", 422, `The application has no secret named ${name}`);
    used.add(v);
    return v;
  };
  const authHeaders: Record<string, string> = {};
  let url = rendered.url;
  if (i.auth) {
    if (i.auth.type === "basic") {
      const credential = Buffer.from(`${i.auth.username}:${reveal(i.auth.passwordSecret)}`, "utf8").toString("base64");
      if (!preview) used.add(`${i.auth.username}:${input.secrets.get(i.auth.passwordSecret)!.reveal()}`);
      authHeaders.authorization = preview ? `Basic ${MASK}` : `Basic ${credential}`;
    } else if (i.auth.type === "bearer") {
      authHeaders.authorization = `Bearer ${reveal(i.auth.tokenSecret)}`;
    } else if (i.auth.type === "header") {
      authHeaders[i.auth.name.toLowerCase()] = reveal(i.auth.valueSecret);
    } else {
      const u = new URL(url);
      u.searchParams.set(i.auth.name, reveal(i.auth.valueSecret));
      url = u.toString();
    }
    // A vault value with a line break would split the header; refuse it like a template header.
    for (const [k, v] of Object.entries(authHeaders)) {
      if (/[\r\n\0]/.test(v)) throw new HookwardenError("E_TEMPLATE_RENDER", 422, `Header ${k} would contain a line break`);
    }
  }

  const plaintext = rendered.body;
  let body = plaintext;
  const encryptionHeaders: Record<string, string> = {};
  if (i.encryption && iv && rendered.method !== "GET" && rendered.method !== "DELETE") {
    if (!preview) body = encryptBody(i.encryption.cipher, parseBodyKey(reveal(i.encryption.keySecret), i.encryption.cipher), iv, plaintext);
    encryptionHeaders["webhook-encryption"] = i.encryption.cipher;
    encryptionHeaders["webhook-encryption-iv"] = iv.toString("hex");
    encryptionHeaders["content-type"] = "text/plain; charset=utf-8";
  }

  // A custom credential header (sealed, write-only) is masked wherever it turns up: URL, body,
  // other headers. Template headers are masked whole by name; their values come from the
  // template (shown by GET) or from vault secrets (already in `used`).
  for (const [k, v] of Object.entries(input.customHeaders)) if (isSensitiveHeader(k)) used.add(v);
  const headers: Record<string, string> = {
    ...input.customHeaders,
    ...rendered.headers,
    ...authHeaders,
    ...encryptionHeaders,
    "user-agent": USER_AGENT,
    "webhook-id": msg.id,
    "webhook-timestamp": String(input.timestamp),
  };
  if (input.ep.signature_scheme !== "none" && input.signingKeys.length > 0) {
    headers["webhook-signature"] = preview ? "v1,******" : signatureHeader(input.signingKeys, msg.id, input.timestamp, body);
  }
  const redactor = Redactor.of(used);
  const recorded = { method: rendered.method, url: redactor.redact(url), headers: redactor.redactHeaders(headers), body: redactor.redact(plaintext) };
  if (preview) {
    // No credential, whichever header holds it (a custom header is sealed and write-only). Only
    // what preview rendering already masked keeps its shape, so `Basic ******` still shows
    // which scheme the request will use.
    const shown: Record<string, string> = Object.create(null) as Record<string, string>;
    const rendering = (k: string) => Object.hasOwn(rendered.headers, k) || Object.hasOwn(authHeaders, k);
    for (const [k, v] of Object.entries(recorded.headers)) shown[k] = isSensitiveHeader(k) && rendering(k) && MASKED_CREDENTIAL.test(headers[k]!) ? headers[k]! : v;
    return { ...recorded, headers: shown, redactor, recorded };
  }
  return {
    method: rendered.method,
    url,
    headers,
    body,
    redactor,
    recorded,
  };
}
