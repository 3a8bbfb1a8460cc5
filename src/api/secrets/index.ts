import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { findApplication } from "../../applications/index.js";
import type { Context } from "../../context/index.js";
import { endpointsUsingSecret } from "../../endpoints/index.js";
import { HookwardenError } from "../../errors/index.js";
import { createAppSecret, deleteAppSecret, listAppSecrets, replaceAppSecret, type AppSecretMeta } from "../../vault/app-secrets.js";
import { SecretValue } from "../../vault/secret-value.js";
import { iso } from "../schemas.js";
import { parse } from "../validate.js";

function secretOut(m: AppSecretMeta) {
  return { name: m.name, createdAt: iso(m.createdAt), updatedAt: iso(m.updatedAt) };
}

// Values are read as plain strings and wrapped at once; no code path here ever echoes them.
const secretIn = z.object({ name: z.string(), value: z.string() });
const secretUpdate = z.object({ value: z.string() });

/** `/api/v1/app/{app_id}/secret`: the write-only vault. Responses carry names and times, never values. */
export function secretRoutes(app: FastifyInstance, ctx: Context): void {
  app.post<{ Params: { app_id: string } }>("/api/v1/app/:app_id/secret", async (req, reply) => {
    const input = parse(secretIn, req.body);
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    return reply.status(201).send(secretOut(await createAppSecret(ctx, application, input.name, new SecretValue(input.value))));
  });

  app.get<{ Params: { app_id: string } }>("/api/v1/app/:app_id/secret", async (req) => {
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    const data = (await listAppSecrets(ctx, application)).map(secretOut);
    return { data, iterator: data.at(-1)?.name ?? null, prevIterator: null, done: true };
  });

  app.put<{ Params: { app_id: string; name: string } }>("/api/v1/app/:app_id/secret/:name", async (req) => {
    const input = parse(secretUpdate, req.body);
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    return secretOut(await replaceAppSecret(ctx, application, req.params.name, new SecretValue(input.value)));
  });

  app.delete<{ Params: { app_id: string; name: string } }>("/api/v1/app/:app_id/secret/:name", async (req, reply) => {
    const application = await findApplication(ctx, req.orgId, req.params.app_id);
    const users = await endpointsUsingSecret(ctx, application.id, req.params.name);
    if (users.length > 0) {
      throw new HookwardenError("E_SECRET_IN_USE", 409, `Secret ${req.params.name} is used by endpoint(s) ${users.join(", ")}; change them first`);
    }
    await deleteAppSecret(ctx, application, req.params.name);
    return reply.status(204).send();
  });
}
