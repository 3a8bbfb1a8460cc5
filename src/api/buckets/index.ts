import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { listAttempts } from "../../attempts/index.js";
import type { Context } from "../../context/index.js";
import { createBucket, deleteBucket, findBucket, listBuckets, updateBucket, type BucketRow } from "../../ingress/buckets.js";
import { createInput, deleteInput, findInput, listInputs, updateInput, type InputRow } from "../../ingress/inputs.js";
import type { InputCache } from "../../ingress/lookup.js";
import type { OutputCache } from "../../ingress/output-cache.js";
import { createOutput, deleteOutput, findOutput, listOutputs, updateOutput, type OutputRow } from "../../ingress/outputs.js";
import { getRequest, listRequests, replayRequest } from "../../ingress/requests.js";
import { attemptOut } from "../attempts/index.js";
import { listResponse, parsePage } from "../pagination.js";
import { iso, rateLimit } from "../schemas.js";
import { parse } from "../validate.js";
import { noStore } from "../no-store.js";

const name = z.string().min(1).max(256);
const bucketAuth = z.discriminatedUnion("type", [
  z.object({ type: z.literal("none") }).strict(),
  z.object({ type: z.literal("basic"), username: z.string().min(1).max(256), password: z.string().max(1024) }).strict(),
  z.object({ type: z.literal("token"), token: z.string().max(1024).optional() }).strict(),
]);
const bucketIn = z.object({
  name,
  auth: bucketAuth.optional(),
  ephemeral: z.boolean().optional(),
  ipAllowlist: z.array(z.string()).max(100).nullish(),
  rateLimit: z.number().int().min(1).max(1_000_000).nullish(),
  retentionDays: z.number().int().min(1).max(3650).optional(),
});
const verificationIn = z.discriminatedUnion("type", [
  z.object({ type: z.literal("none") }).strict(),
  z.object({ type: z.literal("hmac-sha256"), secret: z.string().min(1).max(1024), header: z.string().min(1).max(256), encoding: z.enum(["hex", "base64"]).optional(), prefix: z.string().max(64).optional() }).strict(),
  ...(["stripe", "github", "shopify", "slack", "twilio", "standard-webhooks"] as const).map((t) => z.object({ type: z.literal(t), secret: z.string().min(1).max(1024) }).strict()),
]);
const responseIn = z.discriminatedUnion("mode", [
  z.object({ mode: z.literal("static"), status: z.number().int().min(200).max(599).default(200), headers: z.record(z.string(), z.string()).default({}), body: z.string().max(65536).default("") }).strict(),
  z.object({ mode: z.literal("wait"), timeoutMs: z.number().int().min(1).max(30_000).default(10_000) }).strict(),
  z.object({ mode: z.literal("function"), function: z.string() }).strict(),
]);
const inputIn = z.object({ name, verification: verificationIn.optional(), response: responseIn.optional(), dedupe: z.boolean().optional() });
const outputIn = z.object({
  name: z.string().max(256).optional(),
  type: z.enum(["url", "agent"]).default("url"),
  url: z.string().min(1).max(8192).optional(),
  resign: z.boolean().optional(),
  tlsVerify: z.boolean().optional(),
  broadcast: z.boolean().optional(),
  disabled: z.boolean().optional(),
  rateLimit: rateLimit.nullish(),
});

function bucketOut(b: BucketRow) {
  return {
    id: b.id,
    name: b.name,
    auth: b.auth_type === "basic" ? { type: "basic", username: b.auth_username } : { type: b.auth_type },
    ephemeral: b.ephemeral === 1,
    ipAllowlist: b.ip_allowlist === null ? null : (JSON.parse(b.ip_allowlist) as string[]),
    rateLimit: b.rate_limit,
    retentionDays: b.retention_days,
    createdAt: iso(b.created_at),
    updatedAt: iso(b.updated_at),
  };
}

function outputOut(o: OutputRow) {
  return { id: o.id, name: o.name, type: o.type, url: o.url, resign: o.resign === 1, tlsVerify: o.tls_verify === 1, broadcast: o.broadcast === 1, disabled: o.disabled === 1, disabledReason: o.disabled_reason ?? null, rateLimit: o.rate_limit ?? null, createdAt: iso(o.created_at), updatedAt: iso(o.updated_at) };
}

/** Buckets, inputs, outputs and received requests under `/api/v1/bucket`. */
export function bucketRoutes(app: FastifyInstance, ctx: Context, deps: { inputs: InputCache; outputs?: OutputCache; publicUrl: () => string; notifyWorker: () => void }): void {
  const inputOut = (i: InputRow) => ({
    id: i.id,
    name: i.name,
    url: `${deps.publicUrl()}/in/${i.id}`,
    verification: JSON.parse(i.verification) as unknown,
    response: JSON.parse(i.response) as unknown,
    dedupe: i.dedupe === 1,
    createdAt: iso(i.created_at),
    updatedAt: iso(i.updated_at),
  });
  type B = { Params: { bucket_id: string } };
  type BI = { Params: { bucket_id: string; id: string } };

  app.post("/api/v1/bucket", async (req, reply) => {
    const { row, generatedToken } = await createBucket(ctx, req.orgId, parse(bucketIn, req.body));
    if (generatedToken) noStore(reply);
    return reply.status(201).send({ ...bucketOut(row), ...(generatedToken ? { token: generatedToken.reveal() } : {}) });
  });
  app.get("/api/v1/bucket", async (req) => {
    const rows = (await listBuckets(ctx, req.orgId)).map(bucketOut);
    return { data: rows, iterator: rows.at(-1)?.id ?? null, prevIterator: null, done: true };
  });
  app.get<B>("/api/v1/bucket/:bucket_id", async (req) => bucketOut(await findBucket(ctx, req.orgId, req.params.bucket_id)));
  app.patch<B>("/api/v1/bucket/:bucket_id", async (req, reply) => {
    const { row, generatedToken } = await updateBucket(ctx, req.orgId, req.params.bucket_id, parse(bucketIn.partial(), req.body));
    deps.inputs.invalidate();
    deps.outputs?.invalidate(row.id);
    if (generatedToken) noStore(reply);
    return { ...bucketOut(row), ...(generatedToken ? { token: generatedToken.reveal() } : {}) };
  });
  app.delete<B>("/api/v1/bucket/:bucket_id", async (req, reply) => {
    await deleteBucket(ctx, req.orgId, req.params.bucket_id);
    deps.inputs.invalidate();
    deps.outputs?.invalidate(req.params.bucket_id);
    return reply.status(204).send();
  });

  app.post<B>("/api/v1/bucket/:bucket_id/input", async (req, reply) => {
    const input = parse(inputIn, req.body);
    const bucket = await findBucket(ctx, req.orgId, req.params.bucket_id);
    return reply.status(201).send(inputOut(await createInput(ctx, bucket, input)));
  });
  app.get<B>("/api/v1/bucket/:bucket_id/input", async (req) => {
    const rows = (await listInputs(ctx, await findBucket(ctx, req.orgId, req.params.bucket_id))).map(inputOut);
    return { data: rows, iterator: rows.at(-1)?.id ?? null, prevIterator: null, done: true };
  });
  app.get<BI>("/api/v1/bucket/:bucket_id/input/:id", async (req) => inputOut(await findInput(ctx, await findBucket(ctx, req.orgId, req.params.bucket_id), req.params.id)));
  app.patch<BI>("/api/v1/bucket/:bucket_id/input/:id", async (req) => {
    const input = parse(inputIn.partial(), req.body);
    const row = await updateInput(ctx, await findBucket(ctx, req.orgId, req.params.bucket_id), req.params.id, input);
    deps.inputs.invalidate(row.id);
    return inputOut(row);
  });
  app.delete<BI>("/api/v1/bucket/:bucket_id/input/:id", async (req, reply) => {
    await deleteInput(ctx, await findBucket(ctx, req.orgId, req.params.bucket_id), req.params.id);
    deps.inputs.invalidate(req.params.id);
    return reply.status(204).send();
  });

  app.post<B>("/api/v1/bucket/:bucket_id/output", async (req, reply) => {
    const input = parse(outputIn, req.body);
    const bucket = await findBucket(ctx, req.orgId, req.params.bucket_id);
    const { row, generatedSecret } = await createOutput(ctx, bucket, input);
    deps.outputs?.invalidate(bucket.id);
    if (generatedSecret) noStore(reply);
    return reply.status(201).send({ ...outputOut(row), ...(generatedSecret ? { signingSecret: generatedSecret.reveal() } : {}) });
  });
  app.get<B>("/api/v1/bucket/:bucket_id/output", async (req) => {
    const rows = (await listOutputs(ctx, await findBucket(ctx, req.orgId, req.params.bucket_id))).map(outputOut);
    return { data: rows, iterator: rows.at(-1)?.id ?? null, prevIterator: null, done: true };
  });
  app.get<BI>("/api/v1/bucket/:bucket_id/output/:id", async (req) => outputOut(await findOutput(ctx, await findBucket(ctx, req.orgId, req.params.bucket_id), req.params.id)));
  app.patch<BI>("/api/v1/bucket/:bucket_id/output/:id", async (req, reply) => {
    const { type: _type, ...input } = parse(outputIn.partial(), req.body);
    const { row, generatedSecret } = await updateOutput(ctx, await findBucket(ctx, req.orgId, req.params.bucket_id), req.params.id, input);
    deps.outputs?.invalidate(row.bucket_id);
    if (generatedSecret) noStore(reply);
    return { ...outputOut(row), ...(generatedSecret ? { signingSecret: generatedSecret.reveal() } : {}) };
  });
  app.delete<BI>("/api/v1/bucket/:bucket_id/output/:id", async (req, reply) => {
    await deleteOutput(ctx, await findBucket(ctx, req.orgId, req.params.bucket_id), req.params.id);
    deps.outputs?.invalidate(req.params.bucket_id);
    return reply.status(204).send();
  });

  app.get<B>("/api/v1/bucket/:bucket_id/request", async (req) => {
    const page = parsePage(req.query, "descending");
    const bucket = await findBucket(ctx, req.orgId, req.params.bucket_id);
    const rows = await listRequests(ctx, bucket, { limit: page.limit, iterator: page.iterator });
    return listResponse(
      rows.map((r) => ({ id: r.id, inputId: r.inputId, receivedAt: iso(r.receivedAt), size: r.size, statusCode: r.statusCode })),
      page,
    );
  });
  app.get<BI>("/api/v1/bucket/:bucket_id/request/:id", async (req, reply) => {
    // A stored request holds whatever credentials its sender put in it.
    noStore(reply);
    const bucket = await findBucket(ctx, req.orgId, req.params.bucket_id);
    const r = await getRequest(ctx, bucket, req.params.id);
    const attempts = await listAttempts(ctx, bucket.id, { limit: 250, iterator: undefined, order: "descending" }, { msgId: r.id });
    const body = r.request ? Buffer.from(r.request.body, "base64") : undefined;
    const utf8 = body !== undefined && Buffer.from(body.toString("utf8"), "utf8").equals(body);
    return {
      id: r.id,
      inputId: r.inputId,
      receivedAt: iso(r.receivedAt),
      size: r.size,
      statusCode: r.statusCode,
      request: r.request && body
        ? { method: r.request.method, path: r.request.suffix, query: r.request.query, headers: r.request.headers, body: utf8 ? body.toString("utf8") : body.toString("base64"), bodyEncoding: utf8 ? "utf8" : "base64" }
        : null,
      attempts: attempts.map(attemptOut),
    };
  });
  app.post<BI>("/api/v1/bucket/:bucket_id/request/:id/replay", async (req, reply) => {
    const bucket = await findBucket(ctx, req.orgId, req.params.bucket_id);
    const queued = await replayRequest(ctx, bucket, req.params.id);
    deps.notifyWorker();
    return reply.status(202).send({ queued });
  });
}
