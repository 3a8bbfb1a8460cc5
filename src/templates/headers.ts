import { HookwardenError } from "../errors/index.js";
import { isSensitiveHeader } from "../redaction/sensitive-headers.js";

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Headers Hookwarden sets itself or that would break the request framing (RFC 9110 §7.6.1). */
const RESERVED = new Set([
  "host", "content-length", "content-type", "connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer", "expect",
  "proxy-connection", "webhook-id", "webhook-timestamp", "webhook-signature",
]);


/** Checks custom endpoint headers and lower-cases their names. */
export function checkHeaders(headers: Record<string, string>, loc: string[] = ["body", "headers"]): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (!TOKEN_RE.test(name)) throw HookwardenError.invalidField([...loc, name], "Not a valid HTTP header name");
    if (RESERVED.has(lower) || lower.startsWith("svix-")) {
      throw HookwardenError.invalidField([...loc, name], "This header is set by Hookwarden and cannot be overridden");
    }
    if (/[\r\n\0]/.test(value) || value.length > 4096) throw HookwardenError.invalidField([...loc, name], "Header values must be single-line and at most 4096 characters");
    out[lower] = value;
  }
  if (Object.keys(out).length > 50) throw HookwardenError.invalidField(loc, "At most 50 custom headers");
  return out;
}

/** `{headers, sensitive}` as Svix returns them: sensitive values are never shown. */
export function headersOut(headers: Record<string, string>): { headers: Record<string, string>; sensitive: string[] } {
  const visible: Record<string, string> = Object.create(null) as Record<string, string>;
  const sensitive: string[] = [];
  for (const [k, v] of Object.entries(headers)) {
    if (isSensitiveHeader(k)) sensitive.push(k);
    else visible[k] = v;
  }
  return { headers: visible, sensitive };
}
