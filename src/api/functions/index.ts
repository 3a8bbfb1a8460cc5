import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { findApplication } from "../../applications/index.js";
import type { Context } from "../../context/index.js";
import {
  checkFunctionCode,
  checkFunctionName,
  deleteFunction,
  findFunction,
  listFunctions,
  listFunctionVersions,
  saveFunctionVersion,
  type FunctionRow,
  type FunctionScope,
} from "../../functions/index.js";
import type { FunctionRunner } from "../../functions/runner.js";
import { findBucket } from "../../ingress/buckets.js";
import { findEndpoint } from "../../endpoints/index.js";
import { HookwardenError } from "../../errors/index.js";
import { getTransformation, setTransformation } from "../../delivery/endpoint-transform.js";
import { getInputTransformation, getOutputTransformation, setInputTransformation, setOutputTransformation } from "../../ingress/forward-transform.js";
import { findInput } from "../../ingress/inputs.js";
import { findOutput } from "../../ingress/outputs.js";
import { appSecretNames, loadAppSecrets } from "../../applications/vault.js";
import type { SecretValue } from "../../vault/secret-value.js";
import { iso } from "../schemas.js";
import { dateTime, listOf, named, route } from "../contract/index.js";

export const FunctionVersion = named("Function", z.object({ name: z.string(), version: z.number().int(), code: z.string(), createdAt: dateTime }));
const FunctionTestResult = named(
  "FunctionTestResult",
  z.object({
    name: z.string(),
    version: z.number().int(),
    console: z.array(z.string()),
    consoleTruncated: z.boolean(),
    /** The function's result, every vault value it read masked as `******`. */
    result: z.unknown(),
    error: z.object({ code: z.string(), detail: z.string() }).optional(),
  }),
);
const Transformation = z.object({ function: z.string().nullable(), enabled: z.boolean() });
const TAG = "Function";

function functionOut(r: FunctionRow): z.output<typeof FunctionVersion> {
  return { name: r.name, version: r.version, code: r.code, createdAt: iso(r.created_at) };
}

const functionIn = z.object({ name: z.string(), code: z.string() });
const testIn = z.object({ input: z.unknown().optional(), version: z.number().int().min(1).optional() });
const transformationIn = z.object({ function: z.string().nullable().optional(), enabled: z.boolean().optional() }).strict();
const versionQuery = z.object({ version: z.coerce.number().int().min(1).optional() });

interface Scoped {
  scope: FunctionScope;
  /** Vault values the function may read (application scope only: the vault is per application). */
  secrets: () => Promise<Map<string, SecretValue>>;
}

type Resolve = (req: FastifyRequest) => Promise<Scoped>;

/**
 * `/api/v1/app/{app}/function` and `/api/v1/bucket/{bucket}/function`: versioned functions. A save
 * runs the syntax check first (422 `E_FUNCTION_SYNTAX` with line and column); `POST …/{name}/test`
 * runs a version against a sample input and answers `{result, console, error?}` with every vault
 * value the function read masked as `******`.
 */
export function functionRoutes(app: FastifyInstance, ctx: Context, runner: FunctionRunner): void {
  const byApp: Resolve = async (req) => {
    const application = await findApplication(ctx, req.orgId, (req.params as { app_id: string }).app_id);
    return {
      scope: { orgId: req.orgId, kind: "app", id: application.id },
      secrets: async () => loadAppSecrets(ctx, application.id, await appSecretNames(ctx.store.db, application.id), new Set()),
    };
  };
  const byBucket: Resolve = async (req) => {
    const bucket = await findBucket(ctx, req.orgId, (req.params as { bucket_id: string }).bucket_id);
    return { scope: { orgId: req.orgId, kind: "bucket", id: bucket.id }, secrets: async () => new Map() };
  };

  for (const [base, resolve, kind, scope] of [["/api/v1/app/:app_id/function", byApp, "app", "an application's"], ["/api/v1/bucket/:bucket_id/function", byBucket, "bucket", "a bucket's"]] as const) {
    const id = (op: string) => `hookwarden.${kind}-function.${op}`;
    route(app, { method: "POST", url: base, operationId: id("save"), summary: `Save a new version of ${scope} function (syntax-checked first)`, tag: TAG, body: functionIn, responses: { 201: { description: "Saved", schema: FunctionVersion } } }, async (req, reply, { body: input }) => {
      checkFunctionName(input.name);
      checkFunctionCode(input.code);
      const { scope } = await resolve(req);
      await runner.check(input.code, ctx.clock.now());
      return reply.status(201).send(functionOut(await saveFunctionVersion(ctx, scope, input.name, input.code)));
    });

    route(app, { method: "GET", url: base, operationId: id("list"), summary: `List ${scope} functions (latest versions)`, tag: TAG, responses: { 200: { description: "The functions", schema: listOf(FunctionVersion) } } }, async (req) => {
      const { scope } = await resolve(req);
      const data = (await listFunctions(ctx, scope)).map(functionOut);
      return { data, iterator: data.at(-1)?.name ?? null, prevIterator: null, done: true };
    });

    route(app, { method: "GET", url: `${base}/:name`, operationId: id("get"), summary: "Get a function (latest, or `version`)", tag: TAG, query: versionQuery, responses: { 200: { description: "The function", schema: FunctionVersion } } }, async (req, _reply, { query: { version } }) => {
      const { scope } = await resolve(req);
      return functionOut(await findFunction(ctx, scope, req.params.name, version));
    });

    route(app, { method: "GET", url: `${base}/:name/version`, operationId: id("list-versions"), summary: "Every version of a function", tag: TAG, responses: { 200: { description: "The versions", schema: listOf(FunctionVersion) } } }, async (req) => {
      const { scope } = await resolve(req);
      const data = (await listFunctionVersions(ctx, scope, req.params.name)).map(functionOut);
      return { data, iterator: null, prevIterator: null, done: true };
    });

    route(app, { method: "DELETE", url: `${base}/:name`, operationId: id("delete"), summary: "Delete a function and its versions", tag: TAG, responses: { 204: { description: "Deleted" } } }, async (req, reply) => {
      const { scope } = await resolve(req);
      await deleteFunction(ctx, scope, req.params.name);
      return reply.status(204).send();
    });

    route(app, { method: "POST", url: `${base}/:name/test`, operationId: id("test"), summary: "Run a version against a sample input (vault values masked in the answer)", tag: TAG, body: testIn, bodyOptional: true, responses: { 200: { description: "The result, console lines and any error", schema: FunctionTestResult } } }, async (req, _reply, { body }) => {
      const { scope, secrets } = await resolve(req);
      const fn = await findFunction(ctx, scope, req.params.name, body.version);
      const out = await runner.run({ code: fn.code, input: body.input ?? null, secrets: await secrets(), now: ctx.clock.now() });
      const base = { name: fn.name, version: fn.version, console: out.console, consoleTruncated: out.consoleTruncated };
      if (!out.ok) return { ...base, result: null, error: { code: out.error.code, detail: out.error.message } };
      return { ...base, result: JSON.parse(out.redactor.redact(JSON.stringify(out.result))) as unknown };
    });
  }

  // Svix's `…/endpoint/{id}/transformation`, naming a stored function instead of inline code.
  const transformationPath = "/api/v1/app/:app_id/endpoint/:endpoint_id/transformation" as const;
  route(app, { method: "GET", url: transformationPath, operationId: "v1.endpoint.transformation-get", summary: "The endpoint's transformation (a stored function's name)", tag: "Endpoint", responses: { 200: { description: "The transformation", schema: Transformation } } }, async (req) => {
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    const ep = await findEndpoint(ctx, application, req.params.endpoint_id);
    const t = await getTransformation(ctx, ep.id);
    return { function: t?.function ?? null, enabled: t?.enabled ?? false };
  });
  route(app, { method: "PATCH", url: transformationPath, operationId: "v1.endpoint.transformation-partial-update", summary: "Set, enable or clear the endpoint's transformation", tag: "Endpoint", body: transformationIn, responses: { 204: { description: "Updated" } } }, async (req, reply, { body: input }) => {
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    const ep = await findEndpoint(ctx, application, req.params.endpoint_id);
    const current = await getTransformation(ctx, ep.id);
    const name = input.function === undefined ? current?.function : input.function;
    if (name === null || name === undefined) {
      if (input.enabled === true) throw HookwardenError.invalidField(["body", "function"], "Name the function to enable");
      await setTransformation(ctx, ep, null);
      return reply.status(204).send();
    }
    checkFunctionName(name, ["body", "function"]);
    const scope: FunctionScope = { orgId: req.orgId, kind: "app", id: application.id };
    const fn = await findFunction(ctx, scope, name).catch(() => undefined);
    if (!fn) throw HookwardenError.invalidField(["body", "function"], `The application has no function named ${name}`);
    await setTransformation(ctx, ep, { function: name, enabled: input.enabled ?? current?.enabled ?? true });
    return reply.status(204).send();
  });

  // An output's (URL or agent) transformation before each forward, and an input's, which runs
  // first for every output: `{function: "name"}` or `{function: null}`.
  const forwardTransformationIn = z.object({ function: z.string().nullable() }).strict();
  const forwardTransformation = (
    path: "/api/v1/bucket/:bucket_id/output/:id/transformation" | "/api/v1/bucket/:bucket_id/input/:id/transformation",
    tag: "Output" | "Input",
    find: (bucket: Awaited<ReturnType<typeof findBucket>>, id: string) => Promise<{ id: string; bucket_id: string }>,
    get: (id: string) => Promise<string | undefined>,
    set: (row: { id: string; bucket_id: string }, name: string | null) => Promise<void>,
  ) => {
    const what = tag.toLowerCase();
    route(app, { method: "GET", url: path, operationId: `hookwarden.${what}.transformation-get`, summary: `The ${what}'s transformation`, tag, responses: { 200: { description: "The function's name, or null", schema: z.object({ function: z.string().nullable() }) } } }, async (req) => {
      const bucket = await findBucket(ctx, req.orgId, req.params.bucket_id);
      const row = await find(bucket, req.params.id);
      return { function: (await get(row.id)) ?? null };
    });
    route(app, { method: "PATCH", url: path, operationId: `hookwarden.${what}.transformation-update`, summary: `Set or clear the ${what}'s transformation`, tag, body: forwardTransformationIn, responses: { 204: { description: "Updated" } } }, async (req, reply, { body: input }) => {
      const bucket = await findBucket(ctx, req.orgId, req.params.bucket_id);
      const row = await find(bucket, req.params.id);
      if (input.function !== null) {
        checkFunctionName(input.function, ["body", "function"]);
        const fn = await findFunction(ctx, { orgId: req.orgId, kind: "bucket", id: bucket.id }, input.function).catch(() => undefined);
        if (!fn) throw HookwardenError.invalidField(["body", "function"], `The bucket has no function named ${input.function}`);
      }
      await set(row, input.function);
      return reply.status(204).send();
    });
  };
  forwardTransformation(
    "/api/v1/bucket/:bucket_id/output/:id/transformation",
    "Output",
    (bucket, id) => findOutput(ctx, bucket, id),
    (id) => getOutputTransformation(ctx, id),
    (row, name) => setOutputTransformation(ctx, row, name),
  );
  forwardTransformation(
    "/api/v1/bucket/:bucket_id/input/:id/transformation",
    "Input",
    (bucket, id) => findInput(ctx, bucket, id),
    (id) => getInputTransformation(ctx, id),
    (row, name) => setInputTransformation(ctx, row, name),
  );
}
