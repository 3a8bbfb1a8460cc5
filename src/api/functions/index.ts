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
import { getTransformation, setTransformation } from "../../functions/endpoint-transform.js";
import { getInputTransformation, getOutputTransformation, setInputTransformation, setOutputTransformation } from "../../functions/forward-transform.js";
import { findInput } from "../../ingress/inputs.js";
import { findOutput } from "../../ingress/outputs.js";
import { appSecretNames, loadAppSecrets } from "../../vault/app-secrets.js";
import type { SecretValue } from "../../vault/secret-value.js";
import { iso } from "../schemas.js";
import { parse } from "../validate.js";

function functionOut(r: FunctionRow) {
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

  for (const [base, resolve] of [["/api/v1/app/:app_id/function", byApp], ["/api/v1/bucket/:bucket_id/function", byBucket]] as const) {
    app.post(base, async (req, reply) => {
      const input = parse(functionIn, req.body);
      checkFunctionName(input.name);
      checkFunctionCode(input.code);
      const { scope } = await resolve(req);
      await runner.check(input.code, ctx.clock.now());
      return reply.status(201).send(functionOut(await saveFunctionVersion(ctx, scope, input.name, input.code)));
    });

    app.get(base, async (req) => {
      const { scope } = await resolve(req);
      const data = (await listFunctions(ctx, scope)).map(functionOut);
      return { data, iterator: data.at(-1)?.name ?? null, prevIterator: null, done: true };
    });

    app.get<{ Params: { name: string } }>(`${base}/:name`, async (req) => {
      const { version } = parse(versionQuery, req.query, "query");
      const { scope } = await resolve(req);
      return functionOut(await findFunction(ctx, scope, req.params.name, version));
    });

    app.get<{ Params: { name: string } }>(`${base}/:name/version`, async (req) => {
      const { scope } = await resolve(req);
      const data = (await listFunctionVersions(ctx, scope, req.params.name)).map(functionOut);
      return { data, iterator: null, prevIterator: null, done: true };
    });

    app.delete<{ Params: { name: string } }>(`${base}/:name`, async (req, reply) => {
      const { scope } = await resolve(req);
      await deleteFunction(ctx, scope, req.params.name);
      return reply.status(204).send();
    });

    app.post<{ Params: { name: string } }>(`${base}/:name/test`, async (req) => {
      const body = parse(testIn, req.body ?? {});
      const { scope, secrets } = await resolve(req);
      const fn = await findFunction(ctx, scope, req.params.name, body.version);
      const out = await runner.run({ code: fn.code, input: body.input ?? null, secrets: await secrets(), now: ctx.clock.now() });
      const base = { name: fn.name, version: fn.version, console: out.console, consoleTruncated: out.consoleTruncated };
      if (!out.ok) return { ...base, result: null, error: { code: out.error.code, detail: out.error.message } };
      return { ...base, result: JSON.parse(out.redactor.redact(JSON.stringify(out.result))) as unknown };
    });
  }

  // Svix's `…/endpoint/{id}/transformation`, naming a stored function instead of inline code.
  const transformationPath = "/api/v1/app/:app_id/endpoint/:endpoint_id/transformation";
  app.get<{ Params: { app_id: string; endpoint_id: string } }>(transformationPath, async (req) => {
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    const ep = await findEndpoint(ctx, application, req.params.endpoint_id);
    const t = await getTransformation(ctx, ep.id);
    return { function: t?.function ?? null, enabled: t?.enabled ?? false };
  });
  app.patch<{ Params: { app_id: string; endpoint_id: string } }>(transformationPath, async (req, reply) => {
    const input = parse(transformationIn, req.body);
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
    path: string,
    find: (bucket: Awaited<ReturnType<typeof findBucket>>, id: string) => Promise<{ id: string; bucket_id: string }>,
    get: (id: string) => Promise<string | undefined>,
    set: (row: { id: string; bucket_id: string }, name: string | null) => Promise<void>,
  ) => {
    app.get<{ Params: { bucket_id: string; id: string } }>(path, async (req) => {
      const bucket = await findBucket(ctx, req.orgId, req.params.bucket_id);
      const row = await find(bucket, req.params.id);
      return { function: (await get(row.id)) ?? null };
    });
    app.patch<{ Params: { bucket_id: string; id: string } }>(path, async (req, reply) => {
      const input = parse(forwardTransformationIn, req.body);
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
    (bucket, id) => findOutput(ctx, bucket, id),
    (id) => getOutputTransformation(ctx, id),
    (row, name) => setOutputTransformation(ctx, row, name),
  );
  forwardTransformation(
    "/api/v1/bucket/:bucket_id/input/:id/transformation",
    (bucket, id) => findInput(ctx, bucket, id),
    (id) => getInputTransformation(ctx, id),
    (row, name) => setInputTransformation(ctx, row, name),
  );
}
