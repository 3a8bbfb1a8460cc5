import type { FastifyInstance, FastifyReply } from "fastify";
import { z } from "zod";
import type { ApplicationRow } from "../../applications/index.js";
import type { Context } from "../../context/index.js";
import { headersOut } from "../../templates/headers.js";
import { createEndpoint, deleteEndpoint, findEndpoint, listEndpoints, readHeaders, replaceHeaders, rotateEndpointSecret, updateEndpoint, type EndpointRow } from "../../endpoints/index.js";
import { HookwardenError, hasCode } from "../../errors/index.js";
import { OPERATIONAL_EVENT_TYPES } from "../../operational/event-types.js";
import { ensureOperationalApp, findOperationalApp } from "../../operational/internal-app.js";
import { pickAlias } from "../aliases.js";
import { noStore } from "../no-store.js";
import { listResponse, parsePage } from "../pagination.js";
import { iso, jsonOrNull, metadata, rateLimit, uid } from "../schemas.js";
import { parse } from "../validate.js";
import { dateTime, Empty, listOf, named, route } from "../contract/index.js";
import { pageQuery } from "../pagination.js";
import { EndpointHeaders, revealSecret, SecretKey } from "../endpoints/index.js";

const KNOWN = new Set<string>(OPERATIONAL_EVENT_TYPES);
// Only operational event types: a typo would otherwise silently subscribe to nothing.
const opType = z.string().refine((t) => KNOWN.has(t), { message: `must be one of ${OPERATIONAL_EVENT_TYPES.join(", ")}` });
const types = z.array(opType).min(1).max(OPERATIONAL_EVENT_TYPES.length * 2).nullish();

const fields = {
  url: z.string().min(1).max(65536),
  description: z.string().max(4096).optional(),
  // svix 2.x: eventTypes / throttleRate; svix 1.x: filterTypes / rateLimit.
  eventTypes: types,
  filterTypes: types,
  rateLimit: rateLimit.nullish(),
  throttleRate: rateLimit.nullish(),
  uid: uid.nullish(),
  disabled: z.boolean().optional(),
  metadata: metadata.optional(),
};
// Strict, as every endpoint body: a field we do not implement is a 422 naming it, never dropped.
const createIn = z.object({ ...fields, secret: z.string().max(256).nullish(), headers: z.record(z.string(), z.string()).nullish() }).strict();
const updateIn = z.object(fields).strict();

const rotateIn = z.object({ key: z.string().max(256).nullish(), gracePeriodSeconds: z.number().int().min(0).max(7 * 86400).nullish() }).strict();
const headersIn = z.object({ headers: z.record(z.string(), z.string()) }).strict();

export const OperationalWebhookEndpoint = named(
  "OperationalWebhookEndpoint",
  z.object({
    id: z.string(),
    uid: z.string().nullable(),
    url: z.string(),
    description: z.string(),
    eventTypes: z.array(z.string()).nullable(),
    filterTypes: z.array(z.string()).nullable(),
    rateLimit: z.number().int().nullable(),
    throttleRate: z.number().int().nullable(),
    disabled: z.boolean(),
    /** Why it was disabled automatically (failures, 410 Gone), or null. */
    disabledReason: z.string().nullable(),
    metadata: z.record(z.string(), z.string()),
    createdAt: dateTime,
    updatedAt: dateTime,
  }),
);
/** A generated signing secret appears only in the answer that created the endpoint. */
const OperationalWebhookEndpointCreated = named("OperationalWebhookEndpointCreated", OperationalWebhookEndpoint.extend({ secret: z.string().optional() }));
const TAG = "Operational webhook";

function normalise(input: z.infer<typeof updateIn>) {
  const { eventTypes, filterTypes, rateLimit: rl, throttleRate, ...rest } = input;
  const t = pickAlias("eventTypes", eventTypes, "filterTypes", filterTypes);
  const r = pickAlias("throttleRate", throttleRate, "rateLimit", rl);
  return { ...rest, ...(t !== undefined ? { filterTypes: t } : {}), ...(r !== undefined ? { rateLimit: r } : {}) };
}

/** Svix's OperationalWebhookEndpointOut (both majors' field names), plus why it was disabled. */
export function operationalEndpointOut(row: EndpointRow): z.output<typeof OperationalWebhookEndpoint> {
  const filter = jsonOrNull<string[]>(row.filter_types);
  return {
    id: row.id,
    uid: row.uid,
    url: row.url,
    description: row.description,
    eventTypes: filter,
    filterTypes: filter,
    rateLimit: row.rate_limit,
    throttleRate: row.rate_limit,
    disabled: row.disabled === 1,
    disabledReason: row.disabled_reason,
    metadata: JSON.parse(row.metadata) as Record<string, string>,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

async function appOrNotFound(ctx: Context, orgId: string): Promise<ApplicationRow> {
  const app = await findOperationalApp(ctx, orgId);
  if (!app) throw HookwardenError.notFound("Endpoint");
  return app;
}

async function created(ctx: Context, app: ApplicationRow, input: ReturnType<typeof normalise> & { secret?: string | null | undefined; headers?: Record<string, string> | null | undefined }, reply: FastifyReply) {
  const { secret, headers, ...rest } = input;
  const { row, generatedSecret } = await createEndpoint(ctx, app, { ...rest, ...(secret != null ? { secret } : {}), ...(headers ? { headers } : {}) });
  const body: Record<string, unknown> = operationalEndpointOut(row);
  // Shown once, here, as for application endpoints (GET …/secret is write-only by default).
  if (generatedSecret) {
    body.secret = generatedSecret.reveal();
    noStore(reply);
  }
  return reply.status(201).send(body);
}

/**
 * `/api/v1/operational-webhook/endpoint`: Svix's operational-webhook endpoints, which receive the
 * organisation's operational events (src/operational). Organisation tokens only: an app-portal
 * token's routes (api/auth.ts) and an application-scoped token (no `app_id` here) are refused.
 */
export function operationalWebhookRoutes(app: FastifyInstance, ctx: Context): void {
  const base = "/api/v1/operational-webhook/endpoint";

  const one = `${base}/:endpoint_id` as const;
  const createdAnswer = { description: "Created; a generated `secret` is shown only here", schema: OperationalWebhookEndpointCreated };

  route(app, { method: "GET", url: base, operationId: "v1.operational-webhook.endpoint.list", summary: "List the operational-webhook endpoints", tag: TAG, query: pageQuery, responses: { 200: { description: "A page of endpoints", schema: listOf(OperationalWebhookEndpoint) } } }, async (req) => {
    const page = parsePage(req.query, "ascending");
    const opApp = await findOperationalApp(ctx, req.orgId);
    if (!opApp) return listResponse([], page);
    return listResponse((await listEndpoints(ctx, opApp, page)).map(operationalEndpointOut), page);
  });

  route(app, { method: "POST", url: base, operationId: "v1.operational-webhook.endpoint.create", summary: "Create an operational-webhook endpoint", tag: TAG, body: createIn, responses: { 201: createdAnswer } }, async (req, reply, { body }) => {
    const { secret, headers, ...rest } = body;
    const input = { ...normalise(rest), secret, headers };
    return created(ctx, await ensureOperationalApp(ctx, req.orgId), input, reply);
  });

  route(app, { method: "GET", url: one, operationId: "v1.operational-webhook.endpoint.get", summary: "Get an operational-webhook endpoint (by id or uid)", tag: TAG, responses: { 200: { description: "The endpoint", schema: OperationalWebhookEndpoint } } }, async (req) => {
    return operationalEndpointOut(await findEndpoint(ctx, await appOrNotFound(ctx, req.orgId), req.params.endpoint_id));
  });

  // svix 1.x `update` and svix 2.x `upsert`: PUT on an unknown id/uid creates it under that uid.
  route(app, { method: "PUT", url: one, operationId: "v1.operational-webhook.endpoint.update", summary: "Replace an operational-webhook endpoint, or create it under this uid", tag: TAG, body: updateIn, responses: { 200: { description: "Replaced", schema: OperationalWebhookEndpoint }, 201: createdAnswer } }, async (req, reply, { body }) => {
    const input = normalise(body);
    const opApp = await ensureOperationalApp(ctx, req.orgId);
    const existing = await findEndpoint(ctx, opApp, req.params.endpoint_id).catch((err: unknown) => {
      if (hasCode(err, "E_NOT_FOUND")) return undefined;
      throw err;
    });
    const full = { description: "", filterTypes: null, rateLimit: null, metadata: {}, uid: null, disabled: false, ...input };
    if (!existing) {
      const pathUid = parse(z.object({ endpoint_id: uid }), req.params, "path").endpoint_id;
      if (input.uid != null && input.uid !== pathUid) throw HookwardenError.invalidField(["body", "uid"], "Creating through PUT: the uid in the body must match the one in the path");
      return created(ctx, opApp, { ...full, uid: pathUid }, reply);
    }
    return operationalEndpointOut(await updateEndpoint(ctx, opApp, existing.id, full));
  });

  route(app, { method: "DELETE", url: one, operationId: "v1.operational-webhook.endpoint.delete", summary: "Delete an operational-webhook endpoint", tag: TAG, responses: { 204: { description: "Deleted" } } }, async (req, reply) => {
    await deleteEndpoint(ctx, await appOrNotFound(ctx, req.orgId), req.params.endpoint_id);
    return reply.status(204).send();
  });

  route(app, { method: "GET", url: `${one}/secret`, operationId: "v1.operational-webhook.endpoint.get-secret", summary: "The signing secret, only with --allow-secret-reveal (403 E_SECRET_WRITE_ONLY otherwise)", tag: TAG, responses: { 200: { description: "The key", schema: SecretKey } } }, async (req, reply) => {
    noStore(reply);
    const row = await findEndpoint(ctx, await appOrNotFound(ctx, req.orgId), req.params.endpoint_id);
    return revealSecret(ctx, row.id);
  });

  route(app, { method: "POST", url: `${one}/secret/rotate`, operationId: "v1.operational-webhook.endpoint.rotate-secret", summary: "Rotate the signing secret (the old one stays valid for the grace period)", tag: TAG, body: rotateIn, bodyOptional: true, responses: { 200: { description: "The generated secret, shown only here", schema: z.union([SecretKey, Empty]) }, 204: { description: "Rotated to the caller's `key`" } } }, async (req, reply, { body: input }) => {
    noStore(reply);
    const opApp = await appOrNotFound(ctx, req.orgId);
    const overlap = input.gracePeriodSeconds == null ? undefined : input.gracePeriodSeconds * 1000;
    const generated = await rotateEndpointSecret(ctx, opApp, req.params.endpoint_id, input.key ?? undefined, overlap);
    // Svix answers 204; a generated secret is answered here, its only appearance.
    return generated ? { key: generated.reveal() } : reply.status(204).send();
  });

  route(app, { method: "GET", url: `${one}/headers`, operationId: "v1.operational-webhook.endpoint.get-headers", summary: "The endpoint's extra headers (sensitive ones by name only)", tag: TAG, responses: { 200: { description: "The headers", schema: EndpointHeaders } } }, async (req) => {
    return headersOut(readHeaders(ctx, await findEndpoint(ctx, await appOrNotFound(ctx, req.orgId), req.params.endpoint_id)));
  });

  route(app, { method: "PUT", url: `${one}/headers`, operationId: "v1.operational-webhook.endpoint.update-headers", summary: "Replace the endpoint's extra headers", tag: TAG, body: headersIn, responses: { 204: { description: "Replaced" } } }, async (req, reply, { body: input }) => {
    await replaceHeaders(ctx, await appOrNotFound(ctx, req.orgId), req.params.endpoint_id, input.headers);
    return reply.status(204).send();
  });
}
