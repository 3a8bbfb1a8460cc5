import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { findApplication } from "../../applications/index.js";
import type { Context } from "../../context/index.js";
import { endpointsUsingSecret } from "../../endpoints/index.js";
import { HookwardenError } from "../../errors/index.js";
import { createAppSecret, deleteAppSecret, listAppSecrets, replaceAppSecret, type AppSecretMeta } from "../../applications/vault.js";
import { SecretValue } from "../../vault/secret-value.js";
import { iso } from "../schemas.js";
import { dateTime, listOf, named, route } from "../contract/index.js";

/** A vault entry as listed: its name and times, never its value. */
export const VaultSecret = named("VaultSecret", z.object({ name: z.string(), createdAt: dateTime, updatedAt: dateTime }));
const TAG = "Vault";

function secretOut(m: AppSecretMeta): z.output<typeof VaultSecret> {
  return { name: m.name, createdAt: iso(m.createdAt), updatedAt: iso(m.updatedAt) };
}

// Values are read as plain strings and wrapped at once; no code path here ever echoes them.
const secretIn = z.object({ name: z.string(), value: z.string() });
const secretUpdate = z.object({ value: z.string() });

/** `/api/v1/app/{app_id}/secret`: the write-only vault. Responses carry names and times, never values. */
export function secretRoutes(app: FastifyInstance, ctx: Context): void {
  route(app, { method: "POST", url: "/api/v1/app/:app_id/secret", operationId: "hookwarden.vault.create", summary: "Store a secret in the application's vault (write-only)", tag: TAG, body: secretIn, responses: { 201: { description: "Stored (the value is never returned)", schema: VaultSecret } } }, async (req, reply, { body }) => {
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    return reply.status(201).send(secretOut(await createAppSecret(ctx, application, body.name, new SecretValue(body.value))));
  });

  route(app, { method: "GET", url: "/api/v1/app/:app_id/secret", operationId: "hookwarden.vault.list", summary: "List the vault's secret names", tag: TAG, responses: { 200: { description: "Names and times", schema: listOf(VaultSecret) } } }, async (req) => {
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    const data = (await listAppSecrets(ctx, application)).map(secretOut);
    return { data, iterator: data.at(-1)?.name ?? null, prevIterator: null, done: true };
  });

  route(app, { method: "PUT", url: "/api/v1/app/:app_id/secret/:name", operationId: "hookwarden.vault.replace", summary: "Replace a secret's value", tag: TAG, body: secretUpdate, responses: { 200: { description: "Replaced", schema: VaultSecret } } }, async (req, _reply, { body }) => {
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    return secretOut(await replaceAppSecret(ctx, application, req.params.name, new SecretValue(body.value)));
  });

  route(app, { method: "DELETE", url: "/api/v1/app/:app_id/secret/:name", operationId: "hookwarden.vault.delete", summary: "Delete a secret no endpoint uses", tag: TAG, responses: { 204: { description: "Deleted" } } }, async (req, reply) => {
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    const users = await endpointsUsingSecret(ctx, application.id, req.params.name);
    if (users.length > 0) {
      throw new HookwardenError("E_SECRET_IN_USE", 409, `Secret ${req.params.name} is used by endpoint(s) ${users.join(", ")}; change them first`);
    }
    await deleteAppSecret(ctx, application, req.params.name);
    return reply.status(204).send();
  });
}
