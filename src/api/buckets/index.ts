import { isUtf8 } from "node:buffer";
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { listAttempts } from "../../attempts/index.js";
import type { Context } from "../../context/index.js";
import { createBucket, deleteBucket, findBucket, listBuckets, updateBucket, type BucketRow } from "../../ingress/buckets.js";
import { createInput, deleteInput, findInput, listInputs, updateInput, type InputRow } from "../../ingress/inputs.js";
import type { InputCache } from "../../ingress/lookup.js";
import type { OutputCache } from "../../ingress/output-cache.js";
import { createOutput, deleteOutput, findOutput, listOutputs, updateOutput, type OutputRow } from "../../ingress/outputs.js";
import { getRequest, listRequests, replayRequest, type ListedRequest } from "../../ingress/requests.js";
import { attemptOut } from "../attempts/index.js";
import { listResponse, pageFrom } from "../pagination.js";
import { iso, rateLimit } from "../schemas.js";
import { dateTime, listOf, named, route } from "../contract/index.js";
import { Attempt } from "../attempts/schemas.js";
import { pageQuery } from "../pagination.js";
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

const bucketPatch = bucketIn.partial();
const inputPatch = inputIn.partial();
const outputPatch = outputIn.partial();
export const Bucket = named(
  "Bucket",
  z.object({
    id: z.string(),
    name: z.string(),
    /** The type, and the username for basic auth; never a password or token. */
    auth: z.object({ type: z.enum(["none", "basic", "token"]), username: z.string().nullable().optional() }),
    ephemeral: z.boolean(),
    ipAllowlist: z.array(z.string()).nullable(),
    rateLimit: z.number().int().nullable(),
    retentionDays: z.number().int().nullable(),
    createdAt: dateTime,
    updatedAt: dateTime,
  }),
);
/** A generated bucket token appears only in the answer that created it. */
const BucketWithToken = named("BucketWithToken", Bucket.extend({ token: z.string().optional() }));
export const Input = named(
  "Input",
  z.object({
    id: z.string(),
    name: z.string(),
    /** Where providers send: `<public URL>/in/<id>`. */
    url: z.string(),
    /** The verification type and its parameters; the secret is never returned. */
    verification: z.looseObject({ type: z.string() }),
    response: z.looseObject({ mode: z.enum(["static", "wait", "function"]) }),
    dedupe: z.boolean(),
    createdAt: dateTime,
    updatedAt: dateTime,
  }),
);
export const Output = named(
  "Output",
  z.object({
    id: z.string(),
    name: z.string().nullable(),
    type: z.enum(["url", "agent"]),
    url: z.string().nullable(),
    resign: z.boolean(),
    tlsVerify: z.boolean(),
    broadcast: z.boolean(),
    disabled: z.boolean(),
    /** Why the output was disabled automatically (health), or null. */
    disabledReason: z.string().nullable(),
    /** Forwards per second to this output; null: unlimited. */
    rateLimit: z.number().int().nullable(),
    createdAt: dateTime,
    updatedAt: dateTime,
  }),
);
/** A generated output signing secret appears only in the answer that created it. */
const OutputWithSecret = named("OutputWithSecret", Output.extend({ signingSecret: z.string().optional() }));
const requestSummary = { id: z.string(), inputId: z.string(), receivedAt: dateTime, size: z.number().int(), statusCode: z.number().int().nullable() };
export const InboundRequestSummary = named(
  "InboundRequestSummary",
  z.object({
    ...requestSummary,
    /** `rejected`: refused by a check (allowlist, rate limit, size, auth, signature); `size` is 0, nothing of it is kept. */
    status: z.enum(["accepted", "rejected"]),
    /** The method of a rejected request; null for accepted ones (their stored request has it). */
    method: z.string().nullable(),
    /** Why it was refused, as a stable code (`E_SIGNATURE_INVALID`, `E_UNAUTHORIZED`, ...); null when accepted. */
    rejectionCode: z.string().nullable(),
    rejectionReason: z.string().nullable(),
  }),
);
const requestListQuery = pageQuery.extend({
  /** `accepted` (the default), `rejected`, or `all` merged newest first. */
  status: z.enum(["accepted", "rejected", "all"]).default("accepted"),
});
export const InboundRequest = named(
  "InboundRequest",
  z.object({
    ...requestSummary,
    /** `null` for ephemeral buckets (status, time and size only). Headers in received order, repeats kept. */
    request: z
      .object({ method: z.string(), path: z.string(), query: z.string(), headers: z.array(z.tuple([z.string(), z.string()])), body: z.string(), bodyEncoding: z.enum(["utf8", "base64"]) })
      .nullable(),
    attempts: z.array(Attempt),
  }),
);
const TAG = "Bucket";

export function listedOut(r: ListedRequest): z.output<typeof InboundRequestSummary> {
  return { id: r.id, inputId: r.inputId, receivedAt: iso(r.receivedAt), size: r.size, statusCode: r.statusCode, status: r.status, method: r.method, rejectionCode: r.rejectionCode, rejectionReason: r.rejectionReason };
}

function bucketOut(b: BucketRow): z.output<typeof Bucket> {
  return {
    id: b.id,
    name: b.name,
    auth: b.auth_type === "basic" ? { type: "basic", username: b.auth_username } : { type: b.auth_type as "none" | "token" },
    ephemeral: b.ephemeral === 1,
    ipAllowlist: b.ip_allowlist === null ? null : (JSON.parse(b.ip_allowlist) as string[]),
    rateLimit: b.rate_limit,
    retentionDays: b.retention_days,
    createdAt: iso(b.created_at),
    updatedAt: iso(b.updated_at),
  };
}

function outputOut(o: OutputRow): z.output<typeof Output> {
  return { id: o.id, name: o.name, type: o.type as "url" | "agent", url: o.url, resign: o.resign === 1, tlsVerify: o.tls_verify === 1, broadcast: o.broadcast === 1, disabled: o.disabled === 1, disabledReason: o.disabled_reason ?? null, rateLimit: o.rate_limit ?? null, createdAt: iso(o.created_at), updatedAt: iso(o.updated_at) };
}

/** Buckets, inputs, outputs and received requests under `/api/v1/bucket`. */
export function bucketRoutes(app: FastifyInstance, ctx: Context, deps: { inputs: InputCache; outputs?: OutputCache; publicUrl: () => string }): void {
  const inputOut = (i: InputRow): z.output<typeof Input> => ({
    id: i.id,
    name: i.name,
    url: `${deps.publicUrl()}/in/${i.id}`,
    verification: JSON.parse(i.verification) as z.output<typeof Input>["verification"],
    response: JSON.parse(i.response) as z.output<typeof Input>["response"],
    dedupe: i.dedupe === 1,
    createdAt: iso(i.created_at),
    updatedAt: iso(i.updated_at),
  });

  route(app, { method: "POST", url: "/api/v1/bucket", operationId: "hookwarden.bucket.create", summary: "Create a bucket (inbound webhooks: auth, allowlist, rate limit, retention)", tag: TAG, body: bucketIn, responses: { 201: { description: "Created; a generated `token` is shown only here", schema: BucketWithToken } } }, async (req, reply, { body }) => {
    const { row, generatedToken } = await createBucket(ctx, req.orgId, body);
    if (generatedToken) noStore(reply);
    return reply.status(201).send({ ...bucketOut(row), ...(generatedToken ? { token: generatedToken.reveal() } : {}) });
  });
  route(app, { method: "GET", url: "/api/v1/bucket", operationId: "hookwarden.bucket.list", summary: "List buckets", tag: TAG, responses: { 200: { description: "The buckets", schema: listOf(Bucket) } } }, async (req) => {
    const rows = (await listBuckets(ctx, req.orgId)).map(bucketOut);
    return { data: rows, iterator: rows.at(-1)?.id ?? null, prevIterator: null, done: true };
  });
  route(app, { method: "GET", url: "/api/v1/bucket/:bucket_id", operationId: "hookwarden.bucket.get", summary: "Get a bucket", tag: TAG, responses: { 200: { description: "The bucket", schema: Bucket } } }, async (req) => bucketOut(await findBucket(ctx, req.orgId, req.params.bucket_id)));
  route(app, { method: "PATCH", url: "/api/v1/bucket/:bucket_id", operationId: "hookwarden.bucket.patch", summary: "Change some fields of a bucket", tag: TAG, body: bucketPatch, responses: { 200: { description: "Updated; a newly generated `token` is shown only here", schema: BucketWithToken } } }, async (req, reply, { body }) => {
    const { row, generatedToken } = await updateBucket(ctx, req.orgId, req.params.bucket_id, body);
    deps.inputs.invalidate();
    deps.outputs?.invalidate(row.id);
    if (generatedToken) noStore(reply);
    return { ...bucketOut(row), ...(generatedToken ? { token: generatedToken.reveal() } : {}) };
  });
  route(app, { method: "DELETE", url: "/api/v1/bucket/:bucket_id", operationId: "hookwarden.bucket.delete", summary: "Delete a bucket with its inputs, outputs and requests", tag: TAG, responses: { 204: { description: "Deleted" } } }, async (req, reply) => {
    await deleteBucket(ctx, req.orgId, req.params.bucket_id);
    deps.inputs.invalidate();
    deps.outputs?.invalidate(req.params.bucket_id);
    return reply.status(204).send();
  });

  route(app, { method: "POST", url: "/api/v1/bucket/:bucket_id/input", operationId: "hookwarden.input.create", summary: "Create an input: a public URL with provider signature verification and an answer mode", tag: "Input", body: inputIn, responses: { 201: { description: "Created", schema: Input } } }, async (req, reply, { body: input }) => {
    const bucket = await findBucket(ctx, req.orgId, req.params.bucket_id);
    return reply.status(201).send(inputOut(await createInput(ctx, bucket, input)));
  });
  route(app, { method: "GET", url: "/api/v1/bucket/:bucket_id/input", operationId: "hookwarden.input.list", summary: "List a bucket's inputs", tag: "Input", responses: { 200: { description: "The inputs", schema: listOf(Input) } } }, async (req) => {
    const rows = (await listInputs(ctx, await findBucket(ctx, req.orgId, req.params.bucket_id))).map(inputOut);
    return { data: rows, iterator: rows.at(-1)?.id ?? null, prevIterator: null, done: true };
  });
  route(app, { method: "GET", url: "/api/v1/bucket/:bucket_id/input/:id", operationId: "hookwarden.input.get", summary: "Get an input", tag: "Input", responses: { 200: { description: "The input", schema: Input } } }, async (req) => inputOut(await findInput(ctx, await findBucket(ctx, req.orgId, req.params.bucket_id), req.params.id)));
  route(app, { method: "PATCH", url: "/api/v1/bucket/:bucket_id/input/:id", operationId: "hookwarden.input.patch", summary: "Change some fields of an input", tag: "Input", body: inputPatch, responses: { 200: { description: "Updated", schema: Input } } }, async (req, _reply, { body: input }) => {
    const row = await updateInput(ctx, await findBucket(ctx, req.orgId, req.params.bucket_id), req.params.id, input);
    deps.inputs.invalidate(row.id);
    return inputOut(row);
  });
  route(app, { method: "DELETE", url: "/api/v1/bucket/:bucket_id/input/:id", operationId: "hookwarden.input.delete", summary: "Delete an input (its URL stops answering)", tag: "Input", responses: { 204: { description: "Deleted" } } }, async (req, reply) => {
    await deleteInput(ctx, await findBucket(ctx, req.orgId, req.params.bucket_id), req.params.id);
    deps.inputs.invalidate(req.params.id);
    return reply.status(204).send();
  });

  route(app, { method: "POST", url: "/api/v1/bucket/:bucket_id/output", operationId: "hookwarden.output.create", summary: "Create an output: a URL or an agent that receives the bucket's requests", tag: "Output", body: outputIn, responses: { 201: { description: "Created; a generated `signingSecret` is shown only here", schema: OutputWithSecret } } }, async (req, reply, { body: input }) => {
    const bucket = await findBucket(ctx, req.orgId, req.params.bucket_id);
    const { row, generatedSecret } = await createOutput(ctx, bucket, input);
    deps.outputs?.invalidate(bucket.id);
    if (generatedSecret) noStore(reply);
    return reply.status(201).send({ ...outputOut(row), ...(generatedSecret ? { signingSecret: generatedSecret.reveal() } : {}) });
  });
  route(app, { method: "GET", url: "/api/v1/bucket/:bucket_id/output", operationId: "hookwarden.output.list", summary: "List a bucket's outputs", tag: "Output", responses: { 200: { description: "The outputs", schema: listOf(Output) } } }, async (req) => {
    const rows = (await listOutputs(ctx, await findBucket(ctx, req.orgId, req.params.bucket_id))).map(outputOut);
    return { data: rows, iterator: rows.at(-1)?.id ?? null, prevIterator: null, done: true };
  });
  route(app, { method: "GET", url: "/api/v1/bucket/:bucket_id/output/:id", operationId: "hookwarden.output.get", summary: "Get an output", tag: "Output", responses: { 200: { description: "The output", schema: Output } } }, async (req) => outputOut(await findOutput(ctx, await findBucket(ctx, req.orgId, req.params.bucket_id), req.params.id)));
  route(app, { method: "PATCH", url: "/api/v1/bucket/:bucket_id/output/:id", operationId: "hookwarden.output.patch", summary: "Change some fields of an output (its type is fixed)", tag: "Output", body: outputPatch, responses: { 200: { description: "Updated; a newly generated `signingSecret` is shown only here", schema: OutputWithSecret } } }, async (req, reply, { body }) => {
    const { type: _type, ...input } = body;
    const { row, generatedSecret } = await updateOutput(ctx, await findBucket(ctx, req.orgId, req.params.bucket_id), req.params.id, input);
    deps.outputs?.invalidate(row.bucket_id);
    if (generatedSecret) noStore(reply);
    return { ...outputOut(row), ...(generatedSecret ? { signingSecret: generatedSecret.reveal() } : {}) };
  });
  route(app, { method: "DELETE", url: "/api/v1/bucket/:bucket_id/output/:id", operationId: "hookwarden.output.delete", summary: "Delete an output", tag: "Output", responses: { 204: { description: "Deleted" } } }, async (req, reply) => {
    await deleteOutput(ctx, await findBucket(ctx, req.orgId, req.params.bucket_id), req.params.id);
    deps.outputs?.invalidate(req.params.bucket_id);
    return reply.status(204).send();
  });

  route(app, { method: "GET", url: "/api/v1/bucket/:bucket_id/request", operationId: "hookwarden.request.list", summary: "Requests received by the bucket, newest first; `status=rejected` lists refused ones (code and reason, never a body)", tag: "Inbound Request", query: requestListQuery, responses: { 200: { description: "A page of requests", schema: listOf(InboundRequestSummary) } } }, async (req, _reply, { query }) => {
    const page = pageFrom(query, "descending");
    const bucket = await findBucket(ctx, req.orgId, req.params.bucket_id);
    const rows = await listRequests(ctx, bucket, { limit: page.limit, iterator: page.iterator, status: query.status });
    return listResponse(rows.map(listedOut), page);
  });
  route(app, { method: "GET", url: "/api/v1/bucket/:bucket_id/request/:id", operationId: "hookwarden.request.get", summary: "A received request as sent (credentials included: no-store) with its forward attempts", tag: "Inbound Request", responses: { 200: { description: "The request", schema: InboundRequest } } }, async (req, reply) => {
    // A stored request holds whatever credentials its sender put in it.
    noStore(reply);
    const bucket = await findBucket(ctx, req.orgId, req.params.bucket_id);
    const r = await getRequest(ctx, bucket, req.params.id);
    const attempts = await listAttempts(ctx, bucket.id, { limit: 250, iterator: undefined, order: "descending" }, { msgId: r.id });
    const body = r.request?.body;
    const utf8 = body !== undefined && isUtf8(body);
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
  route(app, { method: "POST", url: "/api/v1/bucket/:bucket_id/request/:id/replay", operationId: "hookwarden.request.replay", summary: "Forward a stored request to the bucket's outputs again", tag: "Inbound Request", responses: { 202: { description: "Queued", schema: z.object({ queued: z.number().int() }) } } }, async (req, reply) => {
    const bucket = await findBucket(ctx, req.orgId, req.params.bucket_id);
    const queued = await replayRequest(ctx, bucket, req.params.id);
    return reply.status(202).send({ queued });
  });
}
