import type { Selectable } from "kysely";
import type { ApplicationRow } from "../applications/index.js";
import type { Context } from "../context/index.js";
import { HookwardenError } from "../errors/index.js";
import { newId } from "../ids/index.js";
import { checkCustomSecret, generateSecret, type SignatureScheme } from "../signing/endpoint-secret.js";
import { isUniqueViolation } from "../store/errors.js";
import type { EndpointsTable } from "../store/schema.js";
import type { EndpointRef } from "../events/index.js";
import type { Page } from "../store/page.js";
import type { Patch } from "../util/patch.js";
import { compileTemplate, type RequestTemplateDef } from "../templates/request.js";
import type { SecretValue } from "../vault/secret-value.js";
import { checkHeaders } from "../templates/headers.js";
import { checkIntegration, referencedSecrets, type BodyEncryption, type EndpointAuth, type Integration } from "./integration.js";
import { insertSecret, rotateSecret } from "./secrets.js";
import { checkEndpointUrl } from "./url.js";

export type EndpointRow = Selectable<EndpointsTable>;

export interface EndpointInput {
  url: string;
  description?: string | undefined;
  version?: number | undefined;
  filterTypes?: string[] | null | undefined;
  channels?: string[] | null | undefined;
  rateLimit?: number | null | undefined;
  disabled?: boolean | undefined;
  metadata?: Record<string, string> | undefined;
  uid?: string | null | undefined;
  secret?: string | undefined;
  headers?: Record<string, string> | undefined;
  signatureScheme?: SignatureScheme | undefined;
  tlsVerify?: boolean | undefined;
  template?: RequestTemplateDef | null | undefined;
  auth?: EndpointAuth | null | undefined;
  encryption?: BodyEncryption | null | undefined;
  redactResponses?: boolean | undefined;
  timeoutMs?: number | null | undefined;
}

export interface Warning {
  code: string;
  detail: string;
}

/** The integration settings stored on an endpoint row. */
export function integrationOf(row: Pick<EndpointRow, "template" | "auth" | "encryption" | "redact_responses" | "timeout_ms">): Integration {
  return {
    template: row.template === null ? null : (JSON.parse(row.template) as RequestTemplateDef),
    auth: row.auth === null ? null : (JSON.parse(row.auth) as EndpointAuth),
    encryption: row.encryption === null ? null : (JSON.parse(row.encryption) as BodyEncryption),
    redactResponses: row.redact_responses === 1,
    timeoutMs: row.timeout_ms,
  };
}

const CREDENTIAL_HEADERS = /^(authorization|proxy-authorization|x-api-key|api-key|x-auth-token|cookie)$/i;

/** Warnings derived from the stored row, so every response (create, get, list) carries them. */
export function endpointWarnings(row: EndpointRow): Warning[] {
  const w: Warning[] = [];
  const i = integrationOf(row);
  if (i.auth?.type === "query") {
    w.push({ code: "E_AUTH_IN_QUERY", detail: "The credential travels in the URL query, which proxies and servers often log; prefer a header" });
  }
  if (i.encryption && !i.encryption.randomIv) {
    w.push({ code: "E_STATIC_IV", detail: "Bodies are encrypted with an all-zero IV: equal bodies give equal ciphertexts. Use randomIv unless the receiver cannot take an IV" });
  }
  for (const [name, value] of Object.entries(i.template?.headers ?? {})) {
    if (CREDENTIAL_HEADERS.test(name) && !value.includes("{{secrets.")) {
      w.push({ code: "E_TEMPLATE_LITERAL_CREDENTIAL", detail: `Template header ${name} holds a literal value; keep credentials in the vault and use {{secrets.NAME}}` });
    }
  }
  if (row.signature_scheme === "none") {
    w.push({ code: "E_ENDPOINT_UNSIGNED", detail: "Deliveries to this endpoint are not signed; the receiver cannot tell them from forgeries" });
  }
  if (row.tls_verify === 0) {
    w.push({ code: "E_TLS_UNVERIFIED", detail: "TLS certificates of this endpoint are not verified; anyone on the path can read and alter deliveries" });
  }
  return w;
}

function refOf(row: Pick<EndpointRow, "org_id" | "app_id" | "id" | "uid">): EndpointRef {
  return { orgId: row.org_id, appId: row.app_id, endpointId: row.id, endpointUid: row.uid };
}

export function headersAad(endpointId: string): string {
  return `endpoint-headers:${endpointId}`;
}

export function readHeaders(ctx: Context, row: Pick<EndpointRow, "id" | "headers_enc">): Record<string, string> {
  return row.headers_enc === null ? {} : (JSON.parse(ctx.keyring.openString(row.headers_enc, headersAad(row.id))) as Record<string, string>);
}

function sealHeaders(ctx: Context, endpointId: string, headers: Record<string, string>): string | null {
  return Object.keys(headers).length === 0 ? null : ctx.keyring.seal(JSON.stringify(headers), headersAad(endpointId));
}

/** Decides the signing secret of a new endpoint: the caller's (checked), a generated one, or none on explicit opt-out. */
function initialSecret(input: EndpointInput): { scheme: SignatureScheme; secret: SecretValue | undefined; generated: boolean } {
  if (input.signatureScheme === "none") {
    if (input.secret !== undefined) throw HookwardenError.invalidField(["body", "secret"], "An endpoint with signatureScheme \"none\" cannot have a secret");
    return { scheme: "none", secret: undefined, generated: false };
  }
  if (input.secret !== undefined) {
    const checked = checkCustomSecret(input.secret);
    if (input.signatureScheme !== undefined && input.signatureScheme !== checked.scheme) {
      throw HookwardenError.invalidField(["body", "secret"], `The secret is for ${checked.scheme}, but signatureScheme is ${input.signatureScheme}`, "E_SECRET_FORMAT");
    }
    return { ...checked, generated: false };
  }
  const scheme = input.signatureScheme ?? "hmac-sha256";
  return { scheme, secret: generateSecret(scheme), generated: true };
}

export async function createEndpoint(
  ctx: Context,
  app: ApplicationRow,
  input: EndpointInput,
): Promise<{ row: EndpointRow; generatedSecret: SecretValue | undefined }> {
  const now = ctx.clock.now();
  const id = newId("ep");
  const url = checkEndpointUrl(input.url, ctx.config.allowPrivateNetworks);
  const headers = checkHeaders(input.headers ?? {});
  const { scheme, secret, generated } = initialSecret(input);
  const integration: Integration = {
    template: input.template ?? null,
    auth: input.auth ?? null,
    encryption: input.encryption ?? null,
    redactResponses: input.redactResponses ?? false,
    timeoutMs: input.timeoutMs ?? null,
  };
  await checkIntegration(ctx, app.id, url, integration);
  const row: EndpointRow = {
    id,
    org_id: app.org_id,
    app_id: app.id,
    uid: input.uid ?? null,
    url,
    description: input.description ?? "",
    version: input.version ?? 1,
    filter_types: input.filterTypes ? JSON.stringify(input.filterTypes) : null,
    channels: input.channels ? JSON.stringify(input.channels) : null,
    rate_limit: input.rateLimit ?? null,
    disabled: input.disabled ? 1 : 0,
    disabled_reason: null,
    metadata: JSON.stringify(input.metadata ?? {}),
    headers_enc: sealHeaders(ctx, id, headers),
    signature_scheme: scheme,
    tls_verify: input.tlsVerify === false ? 0 : 1,
    consecutive_failures: 0,
    failing_since: null,
    circuit_open_until: null,
    template: integration.template ? JSON.stringify(integration.template) : null,
    auth: integration.auth ? JSON.stringify(integration.auth) : null,
    encryption: integration.encryption ? JSON.stringify(integration.encryption) : null,
    redact_responses: integration.redactResponses ? 1 : 0,
    timeout_ms: integration.timeoutMs,
    created_at: now,
    updated_at: now,
  };
  try {
    await ctx.store.db.transaction().execute(async (trx) => {
      await trx.insertInto("endpoints").values(row).execute();
      if (secret) await insertSecret(ctx, trx, id, secret, now);
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw new HookwardenError("E_CONFLICT", 409, "An endpoint with this uid already exists in this application");
    throw err;
  }
  if (row.tls_verify === 0) ctx.logger.warn({ endpointId: id, appId: app.id }, "endpoint created with TLS verification disabled");
  const ref = refOf(row);
  ctx.events.emit("endpoint:created", ref);
  if (row.tls_verify === 0) ctx.events.emit("endpoint:tls-verify-disabled", ref);
  return { row, generatedSecret: generated ? secret : undefined };
}

export async function findEndpoint(ctx: Context, app: ApplicationRow, idOrUid: string): Promise<EndpointRow> {
  const row = await ctx.store.db
    .selectFrom("endpoints")
    .selectAll()
    .where("app_id", "=", app.id)
    .where((eb) => eb.or([eb("id", "=", idOrUid), eb("uid", "=", idOrUid)]))
    .executeTakeFirst();
  if (!row) throw HookwardenError.notFound("Endpoint");
  return row;
}

export async function listEndpoints(ctx: Context, app: ApplicationRow, page: Page): Promise<EndpointRow[]> {
  let q = ctx.store.db.selectFrom("endpoints").selectAll().where("app_id", "=", app.id);
  if (page.iterator) q = q.where("id", page.order === "ascending" ? ">" : "<", page.iterator);
  return q.orderBy("id", page.order === "ascending" ? "asc" : "desc").limit(page.limit + 1).execute();
}

export type EndpointPatch = Patch<Omit<EndpointInput, "headers">>;

/**
 * The endpoint as it would be with an unsaved template, auth and body encryption (absent: as
 * saved; null: none), checked exactly as a save checks them, so a preview refuses what a save
 * would refuse, with the same code and field. Nothing is written.
 */
export async function withDraftIntegration(ctx: Context, app: ApplicationRow, row: EndpointRow, draft: Pick<EndpointInput, "template" | "auth" | "encryption">): Promise<EndpointRow> {
  if (draft.template === undefined && draft.auth === undefined && draft.encryption === undefined) return row;
  const merged: EndpointRow = { ...row };
  if (draft.template !== undefined) merged.template = draft.template ? JSON.stringify(draft.template) : null;
  if (draft.auth !== undefined) merged.auth = draft.auth ? JSON.stringify(draft.auth) : null;
  if (draft.encryption !== undefined) merged.encryption = draft.encryption ? JSON.stringify(draft.encryption) : null;
  await checkIntegration(ctx, app.id, merged.url, integrationOf(merged));
  return merged;
}

/** PUT and PATCH. A new `secret` starts a rotation; re-enabling clears the failure history. */
export async function updateEndpoint(ctx: Context, app: ApplicationRow, idOrUid: string, patch: EndpointPatch): Promise<EndpointRow> {
  const current = await findEndpoint(ctx, app, idOrUid);
  const now = ctx.clock.now();
  const set: Partial<EndpointRow> = { updated_at: now };
  if (patch.url !== undefined) set.url = checkEndpointUrl(patch.url, ctx.config.allowPrivateNetworks);
  if (patch.description !== undefined) set.description = patch.description;
  if (patch.version !== undefined) set.version = patch.version;
  if (patch.filterTypes !== undefined) set.filter_types = patch.filterTypes ? JSON.stringify(patch.filterTypes) : null;
  if (patch.channels !== undefined) set.channels = patch.channels ? JSON.stringify(patch.channels) : null;
  if (patch.rateLimit !== undefined) set.rate_limit = patch.rateLimit;
  if (patch.metadata !== undefined) set.metadata = JSON.stringify(patch.metadata);
  if (patch.uid !== undefined) set.uid = patch.uid;
  if (patch.tlsVerify !== undefined) set.tls_verify = patch.tlsVerify ? 1 : 0;
  if (patch.signatureScheme !== undefined && patch.signatureScheme !== current.signature_scheme) {
    throw HookwardenError.invalidField(["body", "signatureScheme"], "The signature scheme is fixed at creation; create a new endpoint to change it");
  }
  if (patch.disabled !== undefined) {
    set.disabled = patch.disabled ? 1 : 0;
    if (!patch.disabled) Object.assign(set, { disabled_reason: null, consecutive_failures: 0, failing_since: null, circuit_open_until: null });
  }
  if (patch.template !== undefined) set.template = patch.template ? JSON.stringify(patch.template) : null;
  if (patch.auth !== undefined) set.auth = patch.auth ? JSON.stringify(patch.auth) : null;
  if (patch.encryption !== undefined) set.encryption = patch.encryption ? JSON.stringify(patch.encryption) : null;
  if (patch.redactResponses !== undefined) set.redact_responses = patch.redactResponses ? 1 : 0;
  if (patch.timeoutMs !== undefined) set.timeout_ms = patch.timeoutMs;
  const merged = { ...current, ...set };
  if (set.url !== undefined || set.template !== undefined || set.auth !== undefined || set.encryption !== undefined || set.timeout_ms !== undefined) {
    await checkIntegration(ctx, app.id, merged.url, integrationOf(merged));
  }
  let newSecret: SecretValue | undefined;
  if (patch.secret !== undefined) {
    if (current.signature_scheme === "none") throw HookwardenError.invalidField(["body", "secret"], "This endpoint was created unsigned (signatureScheme \"none\")");
    const checked = checkCustomSecret(patch.secret);
    if (checked.scheme !== current.signature_scheme) throw HookwardenError.invalidField(["body", "secret"], `This endpoint signs with ${current.signature_scheme}`, "E_SECRET_FORMAT");
    newSecret = checked.secret;
  }
  try {
    await ctx.store.db.transaction().execute(async (trx) => {
      await trx.updateTable("endpoints").set(set).where("id", "=", current.id).execute();
      if (newSecret) await rotateSecret(ctx, trx, current.id, newSecret, now, ctx.config.rotationOverlap);
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw new HookwardenError("E_CONFLICT", 409, "An endpoint with this uid already exists in this application");
    throw err;
  }
  if (set.tls_verify === 0 && current.tls_verify === 1) ctx.logger.warn({ endpointId: current.id }, "endpoint TLS verification disabled");
  const updated = { ...current, ...set };
  const ref = refOf(updated);
  ctx.events.emit("endpoint:updated", ref);
  if (set.disabled === 1 && current.disabled === 0) ctx.events.emit("endpoint:disabled", { endpointId: current.id, reason: "Disabled through the API", trigger: "manual" });
  if (set.tls_verify === 0 && current.tls_verify === 1) ctx.events.emit("endpoint:tls-verify-disabled", ref);
  if (newSecret) ctx.events.emit("secret:rotated", { ...ref, kind: "endpoint", graceUntil: now + ctx.config.rotationOverlap });
  return updated;
}

export async function deleteEndpoint(ctx: Context, app: ApplicationRow, idOrUid: string): Promise<void> {
  const row = await findEndpoint(ctx, app, idOrUid);
  await ctx.store.db.transaction().execute(async (trx) => {
    await trx.deleteFrom("jobs").where("destination_id", "=", row.id).execute();
    await trx.deleteFrom("endpoints").where("id", "=", row.id).execute();
  });
  ctx.events.emit("endpoint:deleted", refOf(row));
}

/** Rotates the signing secret; returns the new secret when Hookwarden generated it (shown once). */
export async function rotateEndpointSecret(
  ctx: Context,
  app: ApplicationRow,
  idOrUid: string,
  key: string | undefined,
  overlapMs: number = ctx.config.rotationOverlap,
): Promise<SecretValue | undefined> {
  const row = await findEndpoint(ctx, app, idOrUid);
  if (row.signature_scheme === "none") {
    throw new HookwardenError("E_VALIDATION", 422, "This endpoint was created unsigned (signatureScheme \"none\"); it has no secret to rotate");
  }
  let secret: SecretValue;
  if (key !== undefined) {
    const checked = checkCustomSecret(key, ["body", "key"]);
    if (checked.scheme !== row.signature_scheme) throw HookwardenError.invalidField(["body", "key"], `This endpoint signs with ${row.signature_scheme}`, "E_SECRET_FORMAT");
    secret = checked.secret;
  } else {
    secret = generateSecret(row.signature_scheme as "hmac-sha256" | "ed25519");
  }
  const now = ctx.clock.now();
  await ctx.store.db.transaction().execute(async (trx) => {
    await rotateSecret(ctx, trx, row.id, secret, now, overlapMs);
    await trx.updateTable("endpoints").set({ updated_at: now }).where("id", "=", row.id).execute();
  });
  ctx.events.emit("secret:rotated", { ...refOf(row), kind: "endpoint", graceUntil: now + overlapMs });
  return key === undefined ? secret : undefined;
}

export async function replaceHeaders(ctx: Context, app: ApplicationRow, idOrUid: string, headers: Record<string, string>): Promise<void> {
  const row = await findEndpoint(ctx, app, idOrUid);
  const checked = checkHeaders(headers);
  await ctx.store.db
    .updateTable("endpoints")
    .set({ headers_enc: sealHeaders(ctx, row.id, checked), updated_at: ctx.clock.now() })
    .where("id", "=", row.id)
    .execute();
}

/** Svix's PATCH: a `null` value (or a name in `deleteHeaders`) removes that header. */
export async function patchHeaders(
  ctx: Context,
  app: ApplicationRow,
  idOrUid: string,
  headers: Record<string, string | null>,
  deleteHeaders: string[] = [],
): Promise<void> {
  const row = await findEndpoint(ctx, app, idOrUid);
  const merged = readHeaders(ctx, row);
  const additions: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, v] of Object.entries(headers)) {
    if (v === null) delete merged[k.toLowerCase()];
    else additions[k] = v;
  }
  for (const k of deleteHeaders) delete merged[k.toLowerCase()];
  Object.assign(merged, checkHeaders(additions));
  await ctx.store.db
    .updateTable("endpoints")
    .set({ headers_enc: sealHeaders(ctx, row.id, checkHeaders(merged)), updated_at: ctx.clock.now() })
    .where("id", "=", row.id)
    .execute();
}

/** Endpoints of an application whose request needs the vault secret `name`. */
export async function endpointsUsingSecret(ctx: Context, appId: string, name: string): Promise<string[]> {
  const rows = await ctx.store.db
    .selectFrom("endpoints")
    .select(["id", "url", "template", "auth", "encryption", "redact_responses", "timeout_ms"])
    .where("app_id", "=", appId)
    .where((eb) => eb.or([eb("template", "is not", null), eb("auth", "is not", null), eb("encryption", "is not", null)]))
    .execute();
  return rows
    .filter((r) => {
      const i = integrationOf(r);
      try {
        return referencedSecrets(i, i.template ? compileTemplate(i.template, r.url) : undefined).has(name);
      } catch {
        // A stored template that no longer compiles: assume the worst rather than fail the delete check.
        return new RegExp(`secrets\\.${name}(?![A-Z0-9_])`).test(r.template ?? "") || referencedSecrets(i, undefined).has(name);
      }
    })
    .map((r) => r.id);
}
