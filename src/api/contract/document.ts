import { z } from "zod";
import type { RouteSpec } from "./route.js";
import { components, ErrorBody } from "./schemas.js";

/** A route as Fastify registered it (`onRoute`), with its declaration when it has one. */
export interface ObservedRoute {
  methods: string[];
  url: string;
  spec: RouteSpec | undefined;
}

type Json = Record<string, unknown>;

/** The methods a route declared `"ANY"` is documented with (OpenAPI has no wildcard method). */
const ANY_DOCUMENTED = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;

/** `/api/v1/app/:app_id/…` → `/api/v1/app/{app_id}/…`; a trailing `*` becomes `{path}`. */
export function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, "{$1}").replace(/\/\*$/, "/{path}");
}

function pathParams(url: string): string[] {
  const names = [...url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!);
  return url.endsWith("/*") ? [...names, "path"] : names;
}

/**
 * Every named schema reached is collected into `defs` and referenced as a component. zod writes
 * them to `$defs` with `#/$defs/` references; the document keeps one copy under `components`.
 */
function toSchema(schema: z.ZodType, io: "input" | "output", defs: Map<string, Json>): Json {
  const json = z.toJSONSchema(schema, { io, metadata: components, target: "draft-2020-12", unrepresentable: "any" }) as Json;
  const text = JSON.stringify(json).replaceAll('"#/$defs/', '"#/components/schemas/');
  const out = JSON.parse(text) as Json;
  const found = (out.$defs ?? {}) as Record<string, Json>;
  for (const [id, def] of Object.entries(found)) {
    // A named schema is the same shape wherever it appears; its input form is never named (bodies are inline).
    if (!defs.has(id)) defs.set(id, def);
  }
  delete out.$defs;
  delete out.$schema;
  return out;
}

function queryParameters(query: z.ZodType, defs: Map<string, Json>): Json[] {
  const json = toSchema(query, "input", defs);
  const props = (json.properties ?? {}) as Record<string, Json>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(props).map(([name, schema]) => ({ name, in: "query", required: required.has(name), schema }));
}

function operation(spec: RouteSpec, method: string, defs: Map<string, Json>): Json {
  const auth = spec.auth ?? "bearer";
  const parameters: Json[] = pathParams(spec.url).map((name) => ({
    name,
    in: "path",
    required: true,
    schema: { type: "string" },
    ...(name === "path" ? { description: "The rest of the path, any depth; forwarded as received" } : {}),
  }));
  if (spec.query) parameters.push(...queryParameters(spec.query, defs));
  const responses: Json = {};
  for (const [status, r] of Object.entries(spec.responses)) {
    const content = r.schema
      ? { "application/json": { schema: toSchema(r.schema, "output", defs) } }
      : r.contentType
        ? { [r.contentType]: { schema: { type: "string" } } }
        : undefined;
    responses[status] = { description: r.description, ...(content ? { content } : {}) };
  }
  const error = (description: string) => ({ description, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } });
  if (auth === "bearer" && !responses["401"]) responses["401"] = error("No valid token (`E_UNAUTHORIZED`)");
  if ((spec.body || spec.query) && !responses["422"]) responses["422"] = error("Invalid input (`E_VALIDATION`): `detail` lists each field");
  responses.default = error("Any other error, as `{code, detail}`");
  // One id per operation: a route with several methods names the later ones by method.
  const suffix = method === firstMethod(spec) ? "" : `.${method.toLowerCase()}`;
  return {
    operationId: spec.operationId + suffix,
    summary: spec.summary,
    ...(spec.description ? { description: spec.description } : {}),
    tags: [spec.tag],
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(spec.body
      ? { requestBody: { required: !spec.bodyOptional, content: { "application/json": { schema: toSchema(spec.body, "input", defs) } } } }
      : {}),
    responses,
    // Public routes say so explicitly; the document's default is the bearer token.
    ...(auth === "bearer" ? {} : { security: auth === "bucket" ? [{}, { bucketBasic: [] }, { bucketToken: [] }] : [] }),
  };
}

function firstMethod(spec: RouteSpec): string {
  return spec.method === "ANY" ? "POST" : typeof spec.method === "string" ? spec.method : spec.method[0]!;
}

function methodsOf(spec: RouteSpec): readonly string[] {
  return spec.method === "ANY" ? ANY_DOCUMENTED : typeof spec.method === "string" ? [spec.method] : spec.method;
}

/**
 * The OpenAPI 3.1 document of the routes this server registered, generated from their
 * declarations: the same zod schemas parse each request. It holds no instance data (no URL,
 * no token, no tenant): the same document for everyone, like Svix's public `openapi.json`.
 */
export function buildDocument(routes: readonly ObservedRoute[], version: string): Json {
  const defs = new Map<string, Json>();
  toSchema(ErrorBody, "output", defs);
  const paths: Record<string, Json> = {};
  const sorted = [...routes].filter((r) => r.spec !== undefined).sort((a, b) => a.url.localeCompare(b.url));
  for (const { spec } of sorted) {
    const s = spec!;
    const path = openApiPath(s.url);
    const item = (paths[path] ??= {});
    for (const method of methodsOf(s)) item[method.toLowerCase()] = operation(s, method, defs);
  }
  const tags = [...new Set(sorted.map((r) => r.spec!.tag))].sort().map((name) => ({ name }));
  return {
    openapi: "3.1.0",
    info: {
      title: "Hookwarden API",
      version,
      description:
        "Svix-compatible webhook API plus Hookwarden's own resources (vault secrets, templates, buckets, inputs, outputs, agents, functions, tokens, audit). Generated at start from the schemas that validate each request. Errors are `{code, detail}`.",
      license: { name: "MIT", identifier: "MIT" },
    },
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    tags,
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "An API token (`hwk_…`) or an app-portal token" },
        bucketBasic: { type: "http", scheme: "basic", description: "A bucket's basic-auth credentials (buckets with `auth.type: basic`)" },
        bucketToken: { type: "http", scheme: "bearer", description: "A bucket's token (buckets with `auth.type: token`), or `?token=`" },
      },
      schemas: Object.fromEntries([...defs.entries()].sort(([a], [b]) => a.localeCompare(b))),
    },
  };
}
