import { z } from "zod";
import type { Context } from "../context/index.js";
import { DEFAULT_RESPONSE, type ResponseConfig } from "./inputs.js";
import type { ReceivedRequest } from "./types.js";
import { latestFunction } from "../functions/index.js";
import type { FunctionRunner } from "../functions/runner.js";

type StaticResponse = Extract<ResponseConfig, { mode: "static" }>;

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const answerOut = z
  .object({
    status: z.number().int().min(200).max(599).default(200),
    headers: z.record(z.string().regex(HEADER_NAME), z.string().max(8192).refine((v) => !/[\r\n\0]/.test(v), "no CR, LF or NUL")).default({}),
    body: z.string().max(65536).default(""),
    drop: z.boolean().optional(),
  })
  .strict();

export interface FunctionAnswer {
  response: StaticResponse;
  /** The function asked not to store or forward the request. */
  drop: boolean;
}

/**
 * Input response mode `function`: the bucket's function receives the verified inbound request
 * `{method, path, query, headers, body}` and returns `{status, headers, body, drop?}` for the
 * caller. It sees the request, never the destinations, so it cannot reveal them. If it fails (or
 * returns the wrong shape) the caller gets the default answer and the request is still stored and
 * forwarded: the provider did nothing wrong. The code is logged, never a secret or the body.
 */
export async function answerWithFunction(
  ctx: Context,
  runner: FunctionRunner | undefined,
  bucket: { id: string; org_id: string },
  inputId: string,
  name: string,
  req: ReceivedRequest,
): Promise<FunctionAnswer> {
  const fallback: FunctionAnswer = { response: DEFAULT_RESPONSE as StaticResponse, drop: false };
  const fn = runner ? await latestFunction(ctx, { orgId: bucket.org_id, kind: "bucket", id: bucket.id }, name) : undefined;
  if (!runner || !fn) {
    ctx.logger.warn({ bucketId: bucket.id, inputId, function: name }, "input response function not found; answered with the default response");
    return fallback;
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = v;
  const out = await runner.run({
    code: fn.code,
    input: { method: req.method, path: req.suffix || "/", query: Object.fromEntries(new URLSearchParams(req.query)), headers, body: req.body.toString("utf8") },
    now: req.receivedAt,
  });
  if (!out.ok) {
    ctx.logger.warn({ bucketId: bucket.id, inputId, function: name, code: out.error.code }, "input response function failed; answered with the default response");
    return fallback;
  }
  const parsed = answerOut.safeParse(out.result ?? {});
  if (!parsed.success) {
    ctx.logger.warn({ bucketId: bucket.id, inputId, function: name, code: "E_FUNCTION_OUTPUT_INVALID" }, "input response function returned an unusable answer; answered with the default response");
    return fallback;
  }
  const { status, headers: h, body, drop } = parsed.data;
  return { response: { mode: "static", status, headers: h, body }, drop: drop === true };
}
