import type { FastifyInstance, FastifyReply } from "fastify";
import { z } from "zod";
import { findApplication } from "../../applications/index.js";
import type { Context } from "../../context/index.js";
import { headersOut } from "../../templates/headers.js";
import {
  createEndpoint,
  deleteEndpoint,
  endpointWarnings,
  findEndpoint,
  listEndpoints,
  patchHeaders,
  readHeaders,
  replaceHeaders,
  rotateEndpointSecret,
  updateEndpoint,
  integrationOf,
  withDraftIntegration,
  type EndpointRow,
} from "../../endpoints/index.js";
import { currentSecret } from "../../endpoints/secrets.js";
import { HookwardenError, hasCode } from "../../errors/index.js";
import type { SecretValue } from "../../vault/secret-value.js";
import { signingKeyFrom } from "../../signing/endpoint-secret.js";
import { ed25519PublicKeyText } from "../../signing/standard-webhooks.js";
import { listResponse, parsePage } from "../pagination.js";
import { channel, eventTypeName, iso, jsonOrNull, metadata, rateLimit, uid } from "../schemas.js";
import { parse } from "../validate.js";
import { dateTime, Empty, ErrorBody, listOf, named, route } from "../contract/index.js";
import { Attempt } from "../attempts/schemas.js";
import { pageQuery } from "../pagination.js";
import { noStore } from "../no-store.js";
import { pickAlias } from "../aliases.js";
import { attemptOut } from "../attempts/schemas.js";
import { callEndpoint, previewRequest } from "../../delivery/sync-call.js";
import type { HttpSender } from "../../delivery/http-sender.js";
import type { FunctionRunner } from "../../functions/runner.js";
import { firstHeader } from "../../tracing/index.js";

const secretName = z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/, "a vault secret name like CRM_TOKEN");
const templateIn = z
  .object({
    method: z.enum(["POST", "PUT", "PATCH", "GET", "DELETE"]).optional(),
    url: z.string().min(1).max(8192).optional(),
    query: z.record(z.string(), z.string()).optional(),
    headers: z.record(z.string(), z.string()).optional(),
    body: z.unknown().optional(),
    contentType: z.string().min(1).max(256).optional(),
  })
  .strict();
const authIn = z.discriminatedUnion("type", [
  z.object({ type: z.literal("basic"), username: z.string().min(1).max(256), passwordSecret: secretName }).strict(),
  z.object({ type: z.literal("bearer"), tokenSecret: secretName }).strict(),
  z.object({ type: z.literal("header"), name: z.string().min(1).max(256), valueSecret: secretName }).strict(),
  z.object({ type: z.literal("query"), name: z.string().min(1).max(256), valueSecret: secretName }).strict(),
]);
const encryptionIn = z
  .object({
    cipher: z.enum(["aes-256-gcm", "chacha20-poly1305", "aes-256-cbc", "aes-128-cbc"]),
    keySecret: secretName,
    randomIv: z.boolean().default(true),
  })
  .strict();

const endpointFields = {
  url: z.string().min(1).max(65536),
  description: z.string().max(4096).optional(),
  version: z.number().int().min(1).max(65535).optional(),
  // svix 2.x sends `eventTypes`; svix 1.x sends `filterTypes` (kept as an alias).
  eventTypes: z.array(eventTypeName).min(1, "eventTypes can't be empty, it must have at least one item").max(1000).nullish(),
  filterTypes: z.array(eventTypeName).min(1, "filterTypes can't be empty, it must have at least one item").max(1000).nullish(),
  channels: z.array(channel).min(1).max(10, "Channels must have at least 1 and at most 10 items, or be set to null").nullish(),
  rateLimit: rateLimit.nullish(),
  throttleRate: rateLimit.nullish(),
  disabled: z.boolean().optional(),
  metadata: metadata.optional(),
  uid: uid.nullish(),
  signatureScheme: z.enum(["hmac-sha256", "ed25519", "none"]).optional(),
  tlsVerify: z.boolean().optional(),
  template: templateIn.nullish(),
  auth: authIn.nullish(),
  encryption: encryptionIn.nullish(),
  redactResponses: z.boolean().optional(),
  timeoutMs: z.number().int().min(1).max(30_000).nullish(),
};
// Strict: a field Hookwarden does not implement is refused (422 naming it), never dropped, since a
// dropped filter-like field would change who receives data.
const endpointIn = z
  .object({
    ...endpointFields,
    secret: z.string().max(256).nullish(),
    headers: z.record(z.string(), z.string()).optional(),
  })
  .strict();
const endpointUpdate = z.object(endpointFields).strict();
const endpointPatch = z.object({ ...endpointFields, secret: z.string().max(256).nullish() }).partial().strict();

const warning = z.object({ code: z.string(), detail: z.string() });
export const Endpoint = named(
  "Endpoint",
  z.object({
    id: z.string(),
    uid: z.string().nullable(),
    url: z.string(),
    description: z.string(),
    version: z.number().int(),
    eventTypes: z.array(z.string()).nullable(),
    filterTypes: z.array(z.string()).nullable(),
    channels: z.array(z.string()).nullable(),
    rateLimit: z.number().int().nullable(),
    throttleRate: z.number().int().nullable(),
    disabled: z.boolean(),
    disabledReason: z.string().nullable(),
    /** Hookwarden's health of the endpoint: the failure streak and the circuit breaker. */
    health: z.object({ consecutiveFailures: z.number().int(), failingSince: dateTime.nullable(), circuitOpenUntil: dateTime.nullable() }),
    metadata: z.record(z.string(), z.string()),
    signatureScheme: z.enum(["hmac-sha256", "ed25519", "none"]),
    tlsVerify: z.boolean(),
    template: templateIn.nullable(),
    auth: authIn.nullable(),
    encryption: encryptionIn.nullable(),
    redactResponses: z.boolean(),
    timeoutMs: z.number().int().nullable(),
    createdAt: dateTime,
    updatedAt: dateTime,
    /** Risky settings, each with a code: unsigned, TLS unverified, credential in the query... */
    warnings: z.array(warning).optional(),
  }),
);
/** A new endpoint: a generated signing secret and an ed25519 public key appear only here. */
const EndpointCreated = named("EndpointCreated", Endpoint.extend({ secret: z.string().optional(), publicKey: z.string().optional() }));
export const SecretKey = named("EndpointSecret", z.object({ key: z.string() }));
export const EndpointHeaders = named("EndpointHeaders", z.object({ headers: z.record(z.string(), z.string()), sensitive: z.array(z.string()) }));
const rotateIn = z.object({ key: z.string().max(256).nullish(), gracePeriodSeconds: z.number().int().min(0).max(7 * 86400).nullish() });
const headersIn = z.object({ headers: z.record(z.string(), z.string()) });
const headersPatch = z.object({ headers: z.record(z.string(), z.string().nullable()), deleteHeaders: z.array(z.string()).optional() });
const Preview = z.object({ method: z.string(), url: z.string(), headers: z.record(z.string(), z.string()), body: z.string(), encrypted: z.boolean() });
const CallAnswer = z.object({ status: z.number().int(), headers: z.record(z.string(), z.string()), body: z.string(), durationMs: z.number(), attemptId: z.string(), msgId: z.string() });
const TAG = "Endpoint";
const one = (description: string) => ({ description, schema: Endpoint });
const created = (description: string) => ({ description, schema: EndpointCreated });
const BASE = "/api/v1/app/:app_id/endpoint";
const ONE = "/api/v1/app/:app_id/endpoint/:endpoint_id";

/** A new endpoint as answered once: a generated secret (and an ed25519 public key) appear only here. */
async function createdBody(ctx: Context, created: { row: EndpointRow; generatedSecret: SecretValue | undefined }, reply: FastifyReply): Promise<Record<string, unknown>> {
  const { row, generatedSecret } = created;
  const body: Record<string, unknown> = endpointOut(row);
  // Shown once, here: no later call returns it (GET .../secret answers E_SECRET_WRITE_ONLY).
  if (generatedSecret) {
    body.secret = generatedSecret.reveal();
    noStore(reply);
  }
  if (row.signature_scheme === "ed25519") {
    const secret = generatedSecret ?? (await currentSecret(ctx, row.id));
    if (secret) body.publicKey = ed25519PublicKeyText((signingKeyFrom(secret) as { key: import("node:crypto").KeyObject }).key);
  }
  return body;
}

export function endpointOut(row: EndpointRow): z.output<typeof Endpoint> {
  const warnings = endpointWarnings(row);
  return {
    id: row.id,
    uid: row.uid,
    url: row.url,
    description: row.description,
    version: row.version,
    eventTypes: jsonOrNull<string[]>(row.filter_types),
    filterTypes: jsonOrNull<string[]>(row.filter_types),
    channels: jsonOrNull<string[]>(row.channels),
    rateLimit: row.rate_limit,
    throttleRate: row.rate_limit,
    disabled: row.disabled === 1,
    disabledReason: row.disabled_reason,
    health: {
      consecutiveFailures: row.consecutive_failures,
      failingSince: row.failing_since === null ? null : iso(row.failing_since),
      circuitOpenUntil: row.circuit_open_until === null ? null : iso(row.circuit_open_until),
    },
    metadata: JSON.parse(row.metadata) as Record<string, string>,
    signatureScheme: row.signature_scheme as z.output<typeof Endpoint>["signatureScheme"],
    tlsVerify: row.tls_verify === 1,
    ...integrationOut(row),
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
    ...(warnings.length > 0 ? { warnings } : {}),
  };
}

function integrationOut(row: EndpointRow) {
  const i = integrationOf(row);
  // Stored as parsed by these same schemas (the column is written from the parsed body).
  type Out = z.output<typeof Endpoint>;
  return { template: i.template as Out["template"], auth: i.auth as Out["auth"], encryption: i.encryption as Out["encryption"], redactResponses: i.redactResponses, timeoutMs: i.timeoutMs };
}

type Aliased = {
  rateLimit?: number | null | undefined;
  throttleRate?: number | null | undefined;
  eventTypes?: string[] | null | undefined;
  filterTypes?: string[] | null | undefined;
  secret?: string | null | undefined;
};

/**
 * Folds each current Svix field name and its older alias into one value. Both present and
 * different is refused: guessing which one the caller meant could widen the event filter.
 */
function normalise<T extends Aliased>(input: T) {
  const { throttleRate, rateLimit: rl, eventTypes, filterTypes, secret, ...rest } = input;
  const rate = pickAlias("throttleRate", throttleRate, "rateLimit", rl);
  const types = pickAlias("eventTypes", eventTypes, "filterTypes", filterTypes);
  return {
    ...rest,
    ...(rate !== undefined ? { rateLimit: rate } : {}),
    ...(types !== undefined ? { filterTypes: types } : {}),
    ...(secret != null ? { secret } : {}),
  };
}


/** `/api/v1/app/{app_id}/endpoint`: Svix's endpoint resource, its secret and its headers. */
const callIn = z.object({
  eventType: eventTypeName,
  payload: z.record(z.string(), z.unknown(), { error: "Payload must be an object" }),
  eventId: uid.nullish(),
});
const testIn = callIn.partial();
/**
 * A preview may carry an unsaved template, auth and encryption (the request editor's draft):
 * absent means as saved, null means none. Same schemas and same checks as a save.
 */
const previewIn = callIn
  .extend({ template: templateIn.nullish(), auth: authIn.nullish(), encryption: encryptionIn.nullish() });

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te", "trailer"]);

/**
 * `GET …/secret` of an endpoint (application or operational): the signing secret, only when the
 * server runs with --allow-secret-reveal; otherwise 403, as secrets are shown once.
 */
export async function revealSecret(ctx: Context, endpointId: string): Promise<{ key: string }> {
  if (!ctx.config.allowSecretReveal) {
    throw new HookwardenError(
      "E_SECRET_WRITE_ONLY",
      403,
      "Signing secrets are write-only: they are shown once when created or rotated. Rotate the secret to get a new one (or start the server with --allow-secret-reveal)",
    );
  }
  const secret = await currentSecret(ctx, endpointId);
  if (!secret) throw HookwardenError.notFound("Secret");
  return { key: secret.reveal() };
}

export function endpointRoutes(app: FastifyInstance, ctx: Context, sender: HttpSender, functions?: FunctionRunner): void {
  route(app, { method: "GET", url: BASE, operationId: "v1.endpoint.list", summary: "List an application's endpoints", tag: TAG, query: pageQuery, responses: { 200: { description: "A page of endpoints", schema: listOf(Endpoint) } } }, async (req) => {
    const page = parsePage(req.query, "ascending");
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    return listResponse((await listEndpoints(ctx, application, page)).map(endpointOut), page);
  });

  route(app, { method: "POST", url: BASE, operationId: "v1.endpoint.create", summary: "Create an endpoint (URL, filters, template, auth, encryption)", tag: TAG, body: endpointIn, responses: { 201: created("Created; a generated `secret` is shown only here") } }, async (req, reply, { body }) => {
    const input = normalise(body);
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    return reply.status(201).send(await createdBody(ctx, await createEndpoint(ctx, application, input), reply));
  });

  route(app, { method: "GET", url: ONE, operationId: "v1.endpoint.get", summary: "Get an endpoint", tag: TAG, responses: { 200: one("The endpoint") } }, async (req) => {
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    return endpointOut(await findEndpoint(ctx, application, req.params.endpoint_id));
  });

  // Svix's upsert: PUT on an unknown endpoint id/uid creates it, the path naming its uid.
  route(app, { method: "PUT", url: ONE, operationId: "v1.endpoint.update", summary: "Replace an endpoint, or create it under this uid", tag: TAG, body: endpointUpdate, responses: { 200: one("Replaced"), 201: created("Created") } }, async (req, reply, { body }) => {
    const input = normalise(body);
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    const full = { description: "", version: 1, filterTypes: null, channels: null, rateLimit: null, metadata: {}, uid: null, disabled: false, ...input };
    const existing = await findEndpoint(ctx, application, req.params.endpoint_id).catch((err: unknown) => {
      if (hasCode(err, "E_NOT_FOUND")) return undefined;
      throw err;
    });
    if (!existing) {
      const pathUid = parse(z.object({ endpoint_id: uid }), req.params, "path").endpoint_id;
      if (input.uid != null && input.uid !== pathUid) {
        throw HookwardenError.invalidField(["body", "uid"], "Creating through PUT: the uid in the body must match the one in the path");
      }
      return reply.status(201).send(await createdBody(ctx, await createEndpoint(ctx, application, { ...full, uid: pathUid }), reply));
    }
    return endpointOut(await updateEndpoint(ctx, application, existing.id, full));
  });

  route(app, { method: "PATCH", url: ONE, operationId: "v1.endpoint.patch", summary: "Change some fields of an endpoint", tag: TAG, body: endpointPatch, responses: { 200: one("Updated") } }, async (req, _reply, { body }) => {
    const input = normalise(body);
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    return endpointOut(await updateEndpoint(ctx, application, req.params.endpoint_id, input));
  });

  route(app, { method: "DELETE", url: ONE, operationId: "v1.endpoint.delete", summary: "Delete an endpoint", tag: TAG, responses: { 204: { description: "Deleted" } } }, async (req, reply) => {
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    await deleteEndpoint(ctx, application, req.params.endpoint_id);
    return reply.status(204).send();
  });

  route(app, { method: "GET", url: `${ONE}/secret`, operationId: "v1.endpoint.get-secret", summary: "The ed25519 public key; a signing secret only with --allow-secret-reveal (403 E_SECRET_WRITE_ONLY otherwise)", tag: TAG, responses: { 200: { description: "The key", schema: SecretKey } } }, async (req, reply) => {
    noStore(reply);
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    const row = await findEndpoint(ctx, application, req.params.endpoint_id);
    if (row.signature_scheme === "ed25519") {
      // A public key is not a secret: receivers need it to verify v1a signatures.
      const secret = await currentSecret(ctx, row.id);
      if (secret) return { key: ed25519PublicKeyText((signingKeyFrom(secret) as { key: import("node:crypto").KeyObject }).key) };
    }
    return revealSecret(ctx, row.id);
  });

  route(app, { method: "POST", url: `${ONE}/secret/rotate`, operationId: "v1.endpoint.rotate-secret", summary: "Rotate the signing secret (the old one stays valid for the grace period)", tag: TAG, body: rotateIn, bodyOptional: true, responses: { 200: { description: "The generated secret, shown only here (`{}` when the caller gave `key`)", schema: z.union([SecretKey, Empty]) } } }, async (req, reply, { body: input }) => {
    noStore(reply);
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    const overlap = input.gracePeriodSeconds == null ? undefined : input.gracePeriodSeconds * 1000;
    const generated = await rotateEndpointSecret(ctx, application, req.params.endpoint_id, input.key ?? undefined, overlap);
    // Svix answers 204; we answer 200 with the generated secret, its only appearance.
    return generated ? { key: generated.reveal() } : {};
  });

  route(app, { method: "GET", url: `${ONE}/headers`, operationId: "v1.endpoint.get-headers", summary: "The endpoint's extra headers (sensitive ones by name only)", tag: TAG, responses: { 200: { description: "The headers", schema: EndpointHeaders } } }, async (req) => {
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    return headersOut(readHeaders(ctx, await findEndpoint(ctx, application, req.params.endpoint_id)));
  });

  route(app, { method: "PUT", url: `${ONE}/headers`, operationId: "v1.endpoint.update-headers", summary: "Replace the endpoint's extra headers", tag: TAG, body: headersIn, responses: { 204: { description: "Replaced" } } }, async (req, reply, { body: input }) => {
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    await replaceHeaders(ctx, application, req.params.endpoint_id, input.headers);
    return reply.status(204).send();
  });

  route(app, { method: "PATCH", url: `${ONE}/headers`, operationId: "v1.endpoint.patch-headers", summary: "Set or remove some extra headers", tag: TAG, body: headersPatch, responses: { 204: { description: "Updated" } } }, async (req, reply, { body: input }) => {
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    await patchHeaders(ctx, application, req.params.endpoint_id, input.headers, input.deleteHeaders);
    return reply.status(204).send();
  });

  route(app, { method: "POST", url: `${ONE}/preview`, operationId: "hookwarden.endpoint.preview", summary: "The request a message would produce (template, auth, encryption, signature), not sent; secrets masked. An unsaved `template`, `auth` or `encryption` in the body is previewed instead of the saved one (checked as a save would, not saved)", tag: TAG, body: previewIn, responses: { 200: { description: "The request", schema: Preview } } }, async (req, _reply, { body }) => {
    const { template, auth, encryption, ...input } = body;
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    const saved = await findEndpoint(ctx, application, req.params.endpoint_id);
    const ep = await withDraftIntegration(ctx, application, saved, { template, auth, encryption });
    const built = await previewRequest(ctx, application, ep, input);
    return { method: built.method, url: built.url, headers: built.headers, body: built.body, encrypted: integrationOf(ep).encryption !== null };
  });

  // Synchronous delivery for IVR-style decisions: the endpoint's answer comes back to the caller.
  route(app, { method: "POST", url: `${ONE}/call`, operationId: "hookwarden.endpoint.call", summary: "Deliver now and return the endpoint's answer (synchronous, for IVR-style decisions)", tag: TAG, body: callIn, responses: { 200: { description: "The endpoint's answer", schema: CallAnswer }, 502: { description: "The endpoint could not be reached", schema: ErrorBody }, 504: { description: "The endpoint did not answer in time", schema: ErrorBody } } }, async (req, reply, { body: input }) => {
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    const ep = await findEndpoint(ctx, application, req.params.endpoint_id);
    const { result, attempt, msg, built } = await callEndpoint(ctx, sender, application, ep, input, functions, firstHeader(req.headers.traceparent));
    if (result.statusCode === 0) {
      // A template or the endpoint's transformation (failed, or cancelled the call) is the
      // caller's configuration: 422 with its code; only the destination's own failures are 502/504.
      const configured = result.errorCode === "E_TEMPLATE_RENDER" || result.errorCode === "E_TEMPLATE_OUTPUT_TOO_LARGE" || (result.errorCode?.startsWith("E_FUNCTION_") ?? false);
      const status = result.errorCode === "E_TIMEOUT" ? 504 : configured ? 422 : 502;
      return reply.status(status).send({ code: result.errorCode, detail: attempt.response, attemptId: attempt.id, msgId: msg.id });
    }
    // The answer is returned as received, like the stored attempt; an endpoint that asked for
    // redactResponses (a platform echoing credentials) gets the same masking here, or this
    // response would hand back the very secret the stored attempt hides.
    const mask = integrationOf(ep).redactResponses && built ? (s: string) => built.redactor.redact(s) : (s: string) => s;
    const headers: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const [k, v] of Object.entries(result.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = mask(v);
    const body = result.truncated && integrationOf(ep).redactResponses && built ? built.redactor.redactCut(result.body) : mask(result.body);
    return { status: result.statusCode, headers, body, durationMs: result.durationMs, attemptId: attempt.id, msgId: msg.id };
  });

  route(app, { method: "POST", url: `${ONE}/test`, operationId: "hookwarden.endpoint.test", summary: "Send a test event now and return the attempt", tag: TAG, body: testIn, bodyOptional: true, responses: { 200: { description: "The attempt", schema: Attempt } } }, async (req, _reply, { body: input }) => {
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    const ep = await findEndpoint(ctx, application, req.params.endpoint_id);
    const { attempt } = await callEndpoint(ctx, sender, application, ep, {
      eventType: input.eventType ?? "hookwarden.test",
      payload: input.payload ?? { test: true, sentAt: new Date(ctx.clock.now()).toISOString() },
      eventId: input.eventId,
    }, functions);
    return attemptOut({ ...attempt, error_code: attempt.error_code ?? null, request: attempt.request ?? null });
  });
}
