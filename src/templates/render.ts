import { HookwardenError } from "../errors/index.js";
import { Redactor } from "../redaction/index.js";
import { SecretValue } from "../vault/secret-value.js";
import type { Expr, Segment } from "./parse.js";

/** What a template may see. Built fresh for every render: renders share no mutable state. */
export interface RenderScope {
  eventType: string;
  eventId: string | null;
  messageId: string;
  /** Message creation time, ms. */
  messageTimestamp: number;
  /** The attempt's `webhook-timestamp`, seconds. */
  timestamp: number;
  payload: unknown;
  /** A vault secret's value, or undefined when the application has no such secret. */
  secret: (name: string) => SecretValue | undefined;
  iv: string | undefined;
  /** Preview: every secret renders as `******` and nothing secret is revealed. */
  preview: boolean;
  /** Secret values this render revealed, so the redactor can mask them wherever they went. */
  usedSecrets: Set<string>;
  /** Characters the render may still produce. */
  budget: { remaining: number };
}

function spend(scope: RenderScope, text: string): string {
  scope.budget.remaining -= text.length;
  if (scope.budget.remaining < 0) {
    throw new HookwardenError("E_TEMPLATE_OUTPUT_TOO_LARGE", 422, "The rendered request is larger than the template output limit");
  }
  return text;
}

function walk(value: unknown, path: readonly string[]): unknown {
  let cur = value;
  for (const seg of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    if (Array.isArray(cur)) {
      if (!/^\d+$/.test(seg)) return undefined;
      cur = cur[Number(seg)];
      continue;
    }
    // Own properties only: a template can never reach Object.prototype or a constructor.
    if (!Object.hasOwn(cur, seg)) return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

/** The raw value an expression refers to; `secret` marks values that must be masked. */
export function resolve(expr: Expr, scope: RenderScope): { value: unknown; secret: boolean } {
  switch (expr.root) {
    case "payload":
      return { value: walk(scope.payload, expr.path), secret: false };
    case "event":
      return { value: expr.path[0] === "type" ? scope.eventType : scope.eventId, secret: false };
    case "message":
      return {
        value: expr.path[0] === "id" ? scope.messageId : expr.path[0] === "eventType" ? scope.eventType : new Date(scope.messageTimestamp).toISOString(),
        secret: false,
      };
    case "timestamp":
      return { value: scope.timestamp, secret: false };
    case "iv":
      return { value: scope.iv ?? "", secret: false };
    case "secrets": {
      const name = expr.path[0]!;
      // Preview is given no secrets at all (nothing may be revealed), so it must not look them up.
      if (scope.preview) return { value: SecretValue.MASK, secret: true };
      const s = scope.secret(name);
      if (!s) throw new HookwardenError("E_TEMPLATE_RENDER", 422, `The application has no secret named ${name}`);
      const v = s.reveal();
      scope.usedSecrets.add(v);
      return { value: v, secret: true };
    }
  }
}

export function toText(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

/**
 * `encodeURIComponent` throws a bare URIError on a lone surrogate, which JSON allows ("\ud800");
 * that is the payload's fault, so it is a render error, not a crash.
 */
export function encodeComponent(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch (cause) {
    throw new HookwardenError("E_TEMPLATE_RENDER", 422, "A value is not valid Unicode and cannot be URL-encoded", { cause });
  }
}

const XML: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" };

function applyFilters(value: unknown, expr: Expr): string {
  let v: unknown = value;
  for (const f of expr.filters) {
    if (f === "json") v = JSON.stringify(v ?? null);
    else if (f === "url") v = encodeComponent(toText(v));
    else if (f === "base64") v = Buffer.from(toText(v), "utf8").toString("base64");
    else v = toText(v).replace(/[&<>"']/g, (c) => XML[c]!);
  }
  return toText(v);
}

/**
 * The redactor derives the usual encodings of each raw value (URL, form, JSON, base64); a secret
 * that a filter turned into something else (`| xml`, `| url | base64`, ...) is only masked if
 * that exact text is known too. Forms the redactor already masks are not added: `| json`'s quoted
 * string would otherwise also swallow the quotes around a JSON value in the recorded body.
 */
function remember(scope: RenderScope, raw: string, out: string): void {
  if (new Redactor([raw]).redact(out) === out) scope.usedSecrets.add(out);
}

/** One expression as text; a masked secret stays `******` whatever its filters. */
export function renderExpr(expr: Expr, scope: RenderScope, encode?: (s: string) => string): string {
  const { value, secret } = resolve(expr, scope);
  if (secret && scope.preview) return spend(scope, SecretValue.MASK);
  const text = applyFilters(value, expr);
  const out = encode ? encode(text) : text;
  if (secret) {
    remember(scope, value as string, text);
    remember(scope, value as string, out);
  }
  return spend(scope, out);
}

/** Renders literal text and expressions; `encode` escapes expression output for its context. */
export function renderSegments(segments: readonly Segment[], scope: RenderScope, encode?: (s: string) => string): string {
  let out = "";
  for (const s of segments) out += typeof s === "string" ? spend(scope, s) : renderExpr(s, scope, encode);
  return out;
}

/** A string that is exactly one expression keeps the value's JSON type in a JSON body. */
export function renderJsonValue(segments: readonly Segment[], scope: RenderScope): unknown {
  const only = segments.length === 1 ? segments[0] : undefined;
  if (only !== undefined && typeof only !== "string" && only.filters.length === 0) {
    const { value, secret } = resolve(only, scope);
    if (secret) return spend(scope, scope.preview ? SecretValue.MASK : toText(value));
    spend(scope, JSON.stringify(value ?? null) ?? "");
    return value ?? null;
  }
  return renderSegments(segments, scope);
}
