import { z } from "zod";
import type { Context } from "../context/index.js";
import { HookwardenError } from "../errors/index.js";
import type { StoredRequest } from "./stored-request.js";
import { latestFunction } from "../functions/index.js";
import type { FunctionRunner } from "../functions/runner.js";
import { freshEntry, readThrough } from "../store/table-writes.js";
import { lookupCache, type TtlCache } from "../util/ttl-cache.js";

export async function getOutputTransformation(ctx: Context, outputId: string): Promise<string | undefined> {
  const row = await ctx.store.db.selectFrom("output_transformations").select("function_name").where("output_id", "=", outputId).executeTakeFirst();
  return row?.function_name;
}

export async function setOutputTransformation(ctx: Context, output: { id: string; bucket_id: string }, name: string | null): Promise<void> {
  const db = ctx.store.db;
  if (name === null) {
    await db.deleteFrom("output_transformations").where("output_id", "=", output.id).execute();
    return;
  }
  const now = ctx.clock.now();
  await db
    .insertInto("output_transformations")
    .values({ output_id: output.id, bucket_id: output.bucket_id, function_name: name, updated_at: now })
    .onConflict((oc) => oc.column("output_id").doUpdateSet({ function_name: name, updated_at: now }))
    .execute();
}

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const forwardOut = z
  .object({
    method: z.enum(["GET", "POST", "PUT", "PATCH", "DELETE"]).optional(),
    path: z.string().max(2048).regex(/^(\/[^\s?#]*)?$/, "a path starting with / (no query, no fragment)").optional(),
    query: z.record(z.string(), z.string()).optional(),
    headers: z.record(z.string().regex(HEADER_NAME), z.string().max(8192).refine((v) => !/[\r\n\0]/.test(v), "no CR, LF or NUL")).optional(),
    body: z.string().optional(),
    drop: z.boolean().optional(),
  })
  .strict();

export async function getInputTransformation(ctx: Context, inputId: string): Promise<string | undefined> {
  const row = await ctx.store.db.selectFrom("input_transformations").select("function_name").where("input_id", "=", inputId).executeTakeFirst();
  return row?.function_name;
}

export async function setInputTransformation(ctx: Context, input: { id: string; bucket_id: string }, name: string | null): Promise<void> {
  const db = ctx.store.db;
  if (name === null) {
    await db.deleteFrom("input_transformations").where("input_id", "=", input.id).execute();
    return;
  }
  const now = ctx.clock.now();
  await db
    .insertInto("input_transformations")
    .values({ input_id: input.id, bucket_id: input.bucket_id, function_name: name, updated_at: now })
    .onConflict((oc) => oc.column("input_id").doUpdateSet({ function_name: name, updated_at: now }))
    .execute();
}

type Step = "input" | "output";

const NAME_TABLES = ["input_transformations", "output_transformations"];
/** Per store: the transformation names of inputs and outputs, kept 2 s (`--delivery-cache`). */
const names = new WeakMap<object, Record<Step, TtlCache<string | undefined>>>();

/**
 * The name of the function transforming an input's or an output's requests, for a forward: read
 * for every attempt before (two queries per forwarded request), now kept 2 s per node and dropped
 * by any write to those tables (`Store.writes`: at once through this process, on the next batch
 * or NOTIFY from another).
 */
function transformationName(ctx: Context, step: Step, id: string): string | undefined | Promise<string | undefined> {
  const load = () => (step === "input" ? getInputTransformation(ctx, id) : getOutputTransformation(ctx, id));
  if (!ctx.config.deliveryCache) return load();
  let caches = names.get(ctx.store);
  if (!caches) {
    const made = { input: lookupCache<string | undefined>(ctx.clock), output: lookupCache<string | undefined>(ctx.clock) };
    ctx.store.writes.watch(NAME_TABLES, () => {
      made.input.delete();
      made.output.delete();
    });
    names.set(ctx.store, made);
    caches = made;
  }
  const hit = freshEntry(ctx.store.writes, caches[step], id);
  return hit ? hit.value : readThrough(ctx.store.writes, NAME_TABLES, caches[step], id, load);
}
export type ForwardTransformOutcome =
  | { kind: "none" }
  | { kind: "drop"; by: Step }
  | { kind: "changed"; stored: StoredRequest }
  | { kind: "error"; error: HookwardenError };

/**
 * The transformations before a forward: the input's (every output of the request gets its
 * result), then the output's. `handler(req)` receives `{method, path, query, headers, body}` (body
 * as text) and returns the parts to change, or `{drop: true}` (or `null`) to send nothing. The
 * output's URL (scheme and host) cannot be changed, only the path below it; re-signing, when on,
 * covers the final body. The stored request stays as the provider sent it (replays run the
 * functions again).
 */
export async function applyForwardTransform(
  ctx: Context,
  runner: FunctionRunner,
  target: { output: { id: string; bucket_id: string; org_id: string } },
  stored: StoredRequest,
): Promise<ForwardTransformOutcome> {
  // Both names are usually cached: then no promise is made for them.
  const input = stored.inputId === undefined ? undefined : transformationName(ctx, "input", stored.inputId);
  const output = transformationName(ctx, "output", target.output.id);
  const [inputFn, outputFn] = typeof input === "object" || typeof output === "object" ? await Promise.all([input, output]) : [input, output];
  if (inputFn === undefined && outputFn === undefined) return { kind: "none" };
  let current = stored;
  for (const [by, name] of [["input", inputFn], ["output", outputFn]] as const) {
    if (name === undefined) continue;
    const step = await runStep(ctx, runner, target.output, by, name, current);
    if (step.kind !== "changed") return step;
    current = step.stored;
  }
  return { kind: "changed", stored: current };
}

async function runStep(
  ctx: Context,
  runner: FunctionRunner,
  output: { bucket_id: string; org_id: string },
  by: Step,
  name: string,
  stored: StoredRequest,
): Promise<Exclude<ForwardTransformOutcome, { kind: "none" }>> {
  const fn = await latestFunction(ctx, { orgId: output.org_id, kind: "bucket", id: output.bucket_id }, name);
  if (!fn) return { kind: "error", error: new HookwardenError("E_FUNCTION_ERROR", 422, `The ${by}'s transformation names function ${name}, which does not exist`) };
  // Header names come from the caller: a plain object would turn `__proto__` into its prototype.
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, v] of stored.headers) headers[k.toLowerCase()] = headers[k.toLowerCase()] === undefined ? v : `${headers[k.toLowerCase()]}, ${v}`;
  const body = stored.body.toString("utf8");
  const out = await runner.run({
    code: fn.code,
    input: { method: stored.method, path: stored.suffix || "/", query: Object.fromEntries(new URLSearchParams(stored.query)), headers, body },
    now: ctx.clock.now(),
  });
  if (!out.ok) return { kind: "error", error: out.error };
  if (out.result === null) return { kind: "drop", by };
  const parsed = forwardOut.safeParse(out.result);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    return { kind: "error", error: new HookwardenError("E_FUNCTION_OUTPUT_INVALID", 422, `The ${by}'s transformation must return {method?, path?, query?, headers?, body?, drop?}: ${first ? `${first.path.join(".")}: ${first.message}` : "invalid"}`) };
  }
  const r = parsed.data;
  if (r.drop === true) return { kind: "drop", by };
  return {
    kind: "changed",
    stored: {
      method: r.method ?? stored.method,
      suffix: r.path === undefined ? stored.suffix : r.path === "/" ? "" : r.path,
      query: r.query === undefined ? stored.query : new URLSearchParams(r.query).toString(),
      // From the function's own (JSON-parsed) object: zod copies a record into a plain object, where
      // a header named `__proto__` would become the prototype and vanish.
      headers: r.headers === undefined ? stored.headers : Object.entries((out.result as { headers: Record<string, string> }).headers),
      body: r.body === undefined ? stored.body : Buffer.from(r.body, "utf8"),
      ...(stored.inputId === undefined ? {} : { inputId: stored.inputId }),
    },
  };
}
