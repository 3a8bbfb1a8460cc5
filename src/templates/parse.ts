import { HookwardenError } from "../errors/index.js";

/**
 * Request templates are data-only: `{{root.path | filter}}` and nothing else. There are no
 * helpers, sections, partials or expressions, so rendering cannot execute code, reach process
 * state, the environment or files, or walk a prototype chain.
 */
export type Root = "event" | "message" | "timestamp" | "payload" | "secrets" | "iv";
export type Filter = "json" | "url" | "base64" | "xml";

export interface Expr {
  root: Root;
  path: string[];
  filters: Filter[];
  /** Character offset of `{{` in the template, for error messages. */
  offset: number;
}

export type Segment = string | Expr;

export const MAX_TEMPLATE_LENGTH = 64 * 1024;
const MAX_EXPRESSIONS = 1_000;
const MAX_PATH = 32;
const FILTERS: readonly Filter[] = ["json", "url", "base64", "xml"];
const FORBIDDEN = new Set(["__proto__", "prototype", "constructor"]);
const IDENT = /^[A-Za-z_][A-Za-z0-9_-]*$|^\d+$/;
export const SECRET_NAME_RE = /^[A-Z][A-Z0-9_]{0,63}$/;
const FIELDS: Record<"event" | "message", readonly string[]> = { event: ["type", "id"], message: ["id", "eventType", "timestamp"] };

export function templateError(loc: string[], msg: string, offset?: number): HookwardenError {
  const where = offset === undefined ? "" : ` (at character ${offset})`;
  return new HookwardenError("E_TEMPLATE_INVALID", 422, `${loc.join(".")}: ${msg}${where}`, {
    validation: [{ loc, msg: `${msg}${where}`, type: "value_error.template" }],
  });
}

/**
 * Splits a template string into literal text and expressions, refusing anything that is not a
 * plain reference: unknown roots, prototype-reaching segments, unknown filters, unclosed braces.
 *
 * `base` is where `src` starts in the text the user wrote (a URL's path follows its origin), so
 * reported positions point into that text.
 *
 * @example parseTemplate("Bearer {{secrets.CRM_TOKEN}}", ["headers", "Authorization"])
 */
export function parseTemplate(src: string, loc: string[], base = 0): Segment[] {
  if (src.length > MAX_TEMPLATE_LENGTH) throw templateError(loc, `template longer than ${MAX_TEMPLATE_LENGTH} characters`);
  const out: Segment[] = [];
  let i = 0;
  let count = 0;
  while (i < src.length) {
    const open = src.indexOf("{{", i);
    if (open === -1) {
      out.push(src.slice(i));
      break;
    }
    if (open > i) out.push(src.slice(i, open));
    const close = src.indexOf("}}", open + 2);
    if (close === -1) throw templateError(loc, "unclosed {{", base + open);
    if (++count > MAX_EXPRESSIONS) throw templateError(loc, `more than ${MAX_EXPRESSIONS} expressions`, base + open);
    out.push(parseExpr(src.slice(open + 2, close), loc, base + open));
    i = close + 2;
  }
  return out;
}

function parseExpr(body: string, loc: string[], offset: number): Expr {
  if (body.includes("{{")) throw templateError(loc, "nested {{", offset);
  const [ref = "", ...filterParts] = body.split("|").map((s) => s.trim());
  const parts = ref.split(".");
  const [root, ...path] = parts;
  if (parts.length > MAX_PATH) throw templateError(loc, `path deeper than ${MAX_PATH}`, offset);
  for (const p of parts) {
    if (FORBIDDEN.has(p) || p.startsWith("__")) throw templateError(loc, `"${p}" may not be referenced`, offset);
    if (!IDENT.test(p)) throw templateError(loc, `"${ref}" is not a reference like payload.customer.id`, offset);
  }
  const filters = filterParts.map((f) => {
    if (!FILTERS.includes(f as Filter)) throw templateError(loc, `unknown filter "${f}" (known: ${FILTERS.join(", ")})`, offset);
    return f as Filter;
  });
  switch (root) {
    case "payload":
      break;
    case "event":
    case "message":
      if (path.length !== 1 || !FIELDS[root].includes(path[0]!)) {
        throw templateError(loc, `${root} has ${FIELDS[root].map((f) => `${root}.${f}`).join(", ")}`, offset);
      }
      break;
    case "timestamp":
    case "iv":
      if (path.length !== 0) throw templateError(loc, `${root} has no fields`, offset);
      break;
    case "secrets":
      if (path.length !== 1 || !SECRET_NAME_RE.test(path[0]!)) throw templateError(loc, "secrets.NAME needs one name like CRM_TOKEN", offset);
      break;
    default:
      throw templateError(loc, `unknown "${root}"; use event, message, timestamp, payload, secrets or iv`, offset);
  }
  return { root: root as Root, path, filters, offset };
}

/** Every expression in a parsed template. */
export function expressions(segments: readonly Segment[]): Expr[] {
  return segments.filter((s): s is Expr => typeof s !== "string");
}
