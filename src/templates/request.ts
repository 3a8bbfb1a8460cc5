import { checkHeaders } from "./headers.js";
import { HookwardenError } from "../errors/index.js";
import { expressions, parseTemplate, templateError, type Segment } from "./parse.js";
import { encodeComponent, renderJsonValue, renderSegments, type RenderScope } from "./render.js";

export type HttpMethod = "POST" | "PUT" | "PATCH" | "GET" | "DELETE";

/** An endpoint's request template, as stored and returned by the API. */
export interface RequestTemplateDef {
  method?: HttpMethod | undefined;
  /** Replaces the endpoint's URL. Its scheme, host and port must be literal. */
  url?: string | undefined;
  query?: Record<string, string> | undefined;
  headers?: Record<string, string> | undefined;
  /** A JSON value (rendered node by node, so values cannot break out of their strings) or a text template. */
  body?: unknown;
  contentType?: string | undefined;
}

interface CompiledJson {
  kind: "json";
  node: JsonNode;
}
type JsonNode = { t: "value"; v: unknown } | { t: "string"; s: Segment[]; loc: string[] } | { t: "array"; items: JsonNode[] } | { t: "object"; entries: [string, JsonNode][] };

export interface CompiledTemplate {
  method: HttpMethod;
  origin: string;
  rest: Segment[];
  query: [string, Segment[]][];
  headers: [string, Segment[]][];
  body: CompiledJson | { kind: "text"; s: Segment[] } | { kind: "payload" };
  contentType: string;
  /** Names of vault secrets the template reads. */
  secrets: Set<string>;
}

export interface RenderedRequest {
  method: HttpMethod;
  url: string;
  headers: Record<string, string>;
  body: string;
}

const MAX_DEPTH = 32;
const MAX_NODES = 10_000;

function compileJson(value: unknown, loc: string[], depth: number, counter: { n: number }): JsonNode {
  if (++counter.n > MAX_NODES) throw templateError(loc, `body template has more than ${MAX_NODES} values`);
  if (depth > MAX_DEPTH) throw templateError(loc, `body template nested deeper than ${MAX_DEPTH}`);
  if (typeof value === "string") return { t: "string", s: parseTemplate(value, loc), loc };
  if (Array.isArray(value)) return { t: "array", items: value.map((v, i) => compileJson(v, [...loc, String(i)], depth + 1, counter)) };
  if (value !== null && typeof value === "object") {
    return { t: "object", entries: Object.entries(value).map(([k, v]) => [k, compileJson(v, [...loc, k], depth + 1, counter)]) };
  }
  return { t: "value", v: value };
}

function* jsonSegments(node: JsonNode): Generator<[string[], Segment[]]> {
  if (node.t === "string") yield [node.loc, node.s];
  else if (node.t === "array") for (const i of node.items) yield* jsonSegments(i);
  else if (node.t === "object") for (const [, v] of node.entries) yield* jsonSegments(v);
}

/**
 * Parses and checks a template when the endpoint is saved: syntax, references, a literal origin
 * (a payload must never choose where secrets are sent), and that every `{{secrets.NAME}}` exists
 * in the application's vault. Errors are `E_TEMPLATE_INVALID` with the field and position.
 */
export function compileTemplate(def: RequestTemplateDef, endpointUrl: string, knownSecrets?: ReadonlySet<string>, loc: string[] = ["body", "template"]): CompiledTemplate {
  const method = def.method ?? "POST";
  const urlText = def.url ?? endpointUrl;
  const m = /^(https?:\/\/[^/?#]*)(.*)$/s.exec(urlText);
  if (!m) throw templateError([...loc, "url"], "must start with http:// or https://");
  const origin = m[1]!;
  if (origin.includes("{{")) throw templateError([...loc, "url"], "the scheme, host and port must be literal; only the path and query may use {{...}}", origin.indexOf("{{"));
  try {
    new URL(origin);
  } catch {
    throw templateError([...loc, "url"], "not a valid URL");
  }
  // The endpoint's own URL is literal: only a template's `url` may hold {{...}}.
  const rest = def.url === undefined ? [m[2]!] : parseTemplate(m[2]!, [...loc, "url"], origin.length);
  if (hasDotSegment(rest.map((s) => (typeof s === "string" ? s : "x")).join(""))) throw templateError([...loc, "url"], "the path may not have . or .. segments");
  const query = Object.entries(def.query ?? {}).map(([k, v]): [string, Segment[]] => [k, parseTemplate(v, [...loc, "query", k])]);
  try {
    checkHeaders(def.headers ?? {}, [...loc, "headers"]);
  } catch (err) {
    const item = err instanceof HookwardenError ? err.validation?.[0] : undefined;
    if (!item) throw err;
    throw templateError(item.loc, item.loc.at(-1)?.toLowerCase() === "content-type" ? "set it with template.contentType" : item.msg);
  }
  const headers = Object.entries(def.headers ?? {}).map(([k, v]): [string, Segment[]] => [k.toLowerCase(), parseTemplate(v, [...loc, "headers", k])]);
  let body: CompiledTemplate["body"];
  if (def.body === undefined) body = { kind: "payload" };
  else if (typeof def.body === "string") body = { kind: "text", s: parseTemplate(def.body, [...loc, "body"]) };
  else body = { kind: "json", node: compileJson(def.body, [...loc, "body"], 0, { n: 0 }) };
  if ((method === "GET" || method === "DELETE") && def.body !== undefined) throw templateError([...loc, "body"], `${method} requests carry no body`);
  const contentType = def.contentType ?? (body.kind === "text" ? "text/plain; charset=utf-8" : "application/json");
  if (/[\r\n]/.test(contentType)) throw templateError([...loc, "contentType"], "must be a single line");

  const all: [string[], Segment[]][] = [
    [[...loc, "url"], rest],
    ...query.map(([k, s]): [string[], Segment[]] => [[...loc, "query", k], s]),
    // Named as the user wrote them (`headers` holds the lower-cased names).
    ...Object.keys(def.headers ?? {}).map((k, n): [string[], Segment[]] => [[...loc, "headers", k], headers[n]![1]]),
  ];
  if (body.kind === "text") all.push([[...loc, "body"], body.s]);
  if (body.kind === "json") for (const entry of jsonSegments(body.node)) all.push(entry);
  const secrets = new Set<string>();
  for (const [where, segs] of all) {
    for (const e of expressions(segs)) {
      if (e.root !== "secrets") continue;
      const name = e.path[0]!;
      if (knownSecrets && !knownSecrets.has(name)) throw templateError(where, `unknown secret ${name}: create it with POST /api/v1/app/{app_id}/secret first`, e.offset);
      secrets.add(name);
    }
  }
  return { method, origin, rest, query, headers, body, contentType, secrets };
}

function renderJsonNode(node: JsonNode, scope: RenderScope): unknown {
  switch (node.t) {
    case "value":
      return node.v;
    case "string":
      return renderJsonValue(node.s, scope);
    case "array":
      return node.items.map((i) => renderJsonNode(i, scope));
    case "object": {
      const out: Record<string, unknown> = {};
      for (const [k, v] of node.entries) Object.defineProperty(out, k, { value: renderJsonNode(v, scope), enumerable: true, writable: true, configurable: true });
      return out;
    }
  }
}

/** Path and query expressions are percent-encoded so a value cannot add segments or parameters. */
const encodeUrlValue = encodeComponent;

/**
 * A `.` or `..` path segment (WHATWG URL also reads `%2e` as a dot) would be resolved away by
 * `new URL`, so a value of exactly ".." could still climb out of its place in the path.
 */
function hasDotSegment(pathAndQuery: string): boolean {
  return pathAndQuery.split(/[?#]/, 1)[0]!.split("/").some((s) => /^(?:\.|%2e){1,2}$/i.test(s));
}

/**
 * Renders the request for one attempt. `payloadText` is the message body as stored (used
 * verbatim when the template has no body, so signatures match what Svix would send).
 */
export function renderRequest(t: CompiledTemplate, scope: RenderScope, payloadText: string): RenderedRequest {
  const path = renderSegments(t.rest, scope, encodeUrlValue);
  if (hasDotSegment(path)) throw new HookwardenError("E_TEMPLATE_RENDER", 422, "A value would make a . or .. segment in the URL path");
  const url = new URL(t.origin + path);
  for (const [k, segs] of t.query) url.searchParams.append(k, renderSegments(segs, scope));
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, segs] of t.headers) {
    const v = renderSegments(segs, scope);
    if (/[\r\n\0]/.test(v)) throw new HookwardenError("E_TEMPLATE_RENDER", 422, `Header ${k} would contain a line break`);
    headers[k] = v;
  }
  let body = "";
  if (t.method !== "GET" && t.method !== "DELETE") {
    if (t.body.kind === "payload") body = payloadText;
    else if (t.body.kind === "text") body = renderSegments(t.body.s, scope);
    else body = JSON.stringify(renderJsonNode(t.body.node, scope));
    headers["content-type"] = t.contentType;
  }
  return { method: t.method, url: url.toString(), headers, body };
}
