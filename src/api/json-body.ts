import type { FastifyInstance, FastifyRequest } from "fastify";
import { HookwardenError } from "../errors/index.js";

/**
 * The deepest nesting of arrays and objects a request body may have, counted over the whole body
 * (`{"payload": {...}}` is already two levels). 128 is serde_json's default recursion limit, which
 * the Svix server (Rust) parses every body with, so nothing Svix accepts is refused here; it is far
 * above any real event (Stripe's deepest payloads nest under 10 levels) and far below the depth at
 * which V8's recursive `JSON.stringify` or a JSON Schema walk overflows the stack (about 5,000).
 */
export const MAX_JSON_DEPTH = 128;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

/**
 * One iterative pass over JSON text, before it is parsed: is it nested deeper than `maxDepth`
 * (stops at the first level too many, so a 100,000-level body costs 129 steps of depth), and does
 * any string hold the escape `\u0000`? Brackets inside strings and escaped quotes are skipped.
 * Invalid JSON is left to the parser; only its depth is judged here.
 *
 * @example
 * scanJson('{"a":[1]}', 128) // { tooDeep: false, nul: false }
 */
export function scanJson(text: string, maxDepth: number): { tooDeep: boolean; nul: boolean } {
  let depth = 0;
  let nul = false;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === QUOTE) inString = false;
      else if (c === BACKSLASH) {
        if (text.startsWith("u0000", i + 1)) nul = true;
        i++; // the escaped character cannot end the string
      }
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > maxDepth) return { tooDeep: true, nul };
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth--;
  }
  return { tooDeep: false, nul };
}

/** Where the first U+0000 sits in a parsed value (an object whose key holds it is itself named), iteratively. */
export function nulLocation(value: unknown): string[] | undefined {
  const stack: [unknown, string[]][] = [[value, []]];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (typeof v === "string") {
      if (v.includes("\u0000")) return path;
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], [...path, String(i)]]);
    } else if (v !== null && typeof v === "object") {
      const entries = Object.entries(v);
      if (entries.some(([k]) => k.includes("\u0000"))) return path;
      for (let i = entries.length - 1; i >= 0; i--) stack.push([entries[i]![1], [...path, entries[i]![0]]]);
    }
  }
  return undefined;
}

/**
 * U+0000 is refused in every string the API accepts: PostgreSQL's `text` and `jsonb` cannot hold it
 * (SQLite can), so accepting it would make the same call succeed on one database and fail on the
 * other, and a NUL in a name, a header or a payload value that a template copies into a request is
 * a truncation hazard for every C-string consumer downstream.
 */
function nulError(loc: string[]): HookwardenError {
  const msg = "must not contain the NUL character (U+0000)";
  return new HookwardenError("E_NUL_CHARACTER", 422, `${loc.join(".")}: ${msg}`, { validation: [{ loc, msg, type: "value_error.nul_character" }] });
}

function refuseNulIn(record: unknown, where: "path" | "query"): void {
  if (record === null || typeof record !== "object") return;
  for (const [key, value] of Object.entries(record)) {
    if (key.includes("\u0000")) throw nulError([where]);
    const values: unknown[] = Array.isArray(value) ? value : [value];
    if (values.some((v) => typeof v === "string" && v.includes("\u0000"))) throw nulError([where, key]);
  }
}

/**
 * Every body, path and query the admin API accepts passes here once, before any route sees it:
 * bodies must be `application/json` (anything else, `text/plain` included, is 415), nest at most
 * `MAX_JSON_DEPTH` levels (422 `E_JSON_TOO_DEEP`) and hold no U+0000 anywhere, nor may a path
 * parameter or a query parameter (422 `E_NUL_CHARACTER`). Fastify's own JSON parser (prototype
 * poisoning refused) does the parsing once the text has been judged.
 */
export function installJsonBody(api: FastifyInstance): void {
  const { onProtoPoisoning, onConstructorPoisoning } = api.initialConfig;
  const parseJson = api.getDefaultJsonParser(onProtoPoisoning ?? "error", onConstructorPoisoning ?? "error");
  api.removeAllContentTypeParsers();
  api.addContentTypeParser("application/json", { parseAs: "string" }, (req, body, done) => {
    const text = body as string;
    const scan = scanJson(text, MAX_JSON_DEPTH);
    if (scan.tooDeep) {
      done(new HookwardenError("E_JSON_TOO_DEEP", 422, `The JSON body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`), undefined);
      return;
    }
    parseJson(req, text, (err, value) => {
      if (err || !scan.nul) return done(err, value);
      const loc = nulLocation(value);
      return loc ? done(nulError(["body", ...loc]), undefined) : done(null, value);
    });
  });
  api.addHook("preValidation", async (req: FastifyRequest) => {
    refuseNulIn(req.params, "path");
    refuseNulIn(req.query, "query");
  });
}
