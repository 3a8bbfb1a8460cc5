import { z } from "zod";
import type { Context } from "../context/index.js";
import type { EndpointRow } from "../endpoints/index.js";
import { checkEndpointUrl } from "../endpoints/url.js";
import { HookwardenError } from "../errors/index.js";
import type { MessageRow } from "../messages/index.js";
import { Redactor } from "../redaction/index.js";
import { appSecretNames, loadAppSecrets } from "../applications/vault.js";
import { latestFunction } from "../functions/index.js";
import type { FunctionRunner } from "../functions/runner.js";
import { selectWhereIn } from "../store/hot.js";

export interface EndpointTransformation {
  function: string;
  enabled: boolean;
}

export async function getTransformation(ctx: Context, endpointId: string): Promise<EndpointTransformation | undefined> {
  const row = await ctx.store.db.selectFrom("endpoint_transformations").selectAll().where("endpoint_id", "=", endpointId).executeTakeFirst();
  return row ? { function: row.function_name, enabled: row.enabled === 1 } : undefined;
}

/**
 * The transformations of `endpointIds` that exist, in one query: loaded with a batch of
 * deliveries, so an attempt does not ask again (one query per attempt before).
 */
export async function loadTransformations(ctx: Context, endpointIds: readonly string[]): Promise<Map<string, EndpointTransformation>> {
  const rows = await selectWhereIn(ctx.store.db, "endpoint_transformations", "endpoint_id", endpointIds);
  return new Map(rows.map((row) => [row.endpoint_id, { function: row.function_name, enabled: row.enabled === 1 }]));
}

export async function setTransformation(ctx: Context, ep: Pick<EndpointRow, "id" | "app_id">, t: EndpointTransformation | null): Promise<void> {
  const db = ctx.store.db;
  if (t === null) {
    await db.deleteFrom("endpoint_transformations").where("endpoint_id", "=", ep.id).execute();
    return;
  }
  const values = { endpoint_id: ep.id, app_id: ep.app_id, function_name: t.function, enabled: t.enabled ? 1 : 0, updated_at: ctx.clock.now() };
  await db
    .insertInto("endpoint_transformations")
    .values(values)
    .onConflict((oc) => oc.column("endpoint_id").doUpdateSet({ function_name: values.function_name, enabled: values.enabled, updated_at: values.updated_at }))
    .execute();
}

/** Svix's transformation result: the same object, possibly changed, or `cancel: true`. */
const webhookOut = z.object({
  method: z.enum(["POST", "PUT"]).default("POST"),
  url: z.string().max(4096),
  payload: z.unknown(),
  cancel: z.boolean().optional(),
}).passthrough();

export type TransformOutcome =
  | { kind: "none" }
  | { kind: "cancel" }
  | { kind: "changed"; method: "POST" | "PUT"; url: string; payload: string; redactor: Redactor }
  | { kind: "error"; error: HookwardenError; redactor: Redactor };

/**
 * Runs the endpoint's transformation (Svix's shape): `handler(webhook)` receives
 * `{method, url, payload, eventType}` and returns it changed, or with `cancel: true`. The new URL
 * passes the same checks as a saved endpoint URL (scheme, no credentials, SSRF policy for IP
 * literals) and the sender's connect-time SSRF guard; the signature is computed afterwards, over
 * the final body.
 */
export async function applyEndpointTransform(
  ctx: Context,
  runner: FunctionRunner,
  ep: Pick<EndpointRow, "id" | "app_id" | "org_id" | "url">,
  msg: Pick<MessageRow, "payload" | "event_type">,
  loaded?: EndpointTransformation | null,
): Promise<TransformOutcome> {
  // `loaded`: read with the batch's endpoints (`null`: it has none); otherwise read now.
  const t = loaded === undefined ? await getTransformation(ctx, ep.id) : loaded;
  if (!t || !t.enabled) return { kind: "none" };
  const fn = await latestFunction(ctx, { orgId: ep.org_id, kind: "app", id: ep.app_id }, t.function);
  if (!fn) {
    return { kind: "error", redactor: Redactor.NONE, error: new HookwardenError("E_FUNCTION_ERROR", 422, `The endpoint's transformation names function ${t.function}, which does not exist`) };
  }
  const secrets = await loadAppSecrets(ctx, ep.app_id, await appSecretNames(ctx.store.db, ep.app_id), new Set());
  const out = await runner.run({
    code: fn.code,
    input: { method: "POST", url: ep.url, payload: JSON.parse(msg.payload) as unknown, eventType: msg.event_type },
    secrets,
    now: ctx.clock.now(),
  });
  if (!out.ok) return { kind: "error", error: out.error, redactor: out.redactor };
  const parsed = webhookOut.safeParse(out.result);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    return {
      kind: "error",
      redactor: out.redactor,
      error: new HookwardenError("E_FUNCTION_OUTPUT_INVALID", 422, `The transformation must return {method, url, payload, cancel?}: ${first ? `${first.path.join(".")}: ${first.message}` : "invalid"}`),
    };
  }
  if (parsed.data.cancel === true) return { kind: "cancel" };
  try {
    const url = parsed.data.url === ep.url ? ep.url : checkEndpointUrl(parsed.data.url, ctx.config.allowPrivateNetworks, ["result", "url"]);
    const payload = JSON.stringify(parsed.data.payload ?? null);
    return { kind: "changed", method: parsed.data.method, url, payload, redactor: out.redactor };
  } catch (err) {
    if (!(err instanceof HookwardenError)) throw err;
    const error = err.code === "E_SSRF_BLOCKED" ? err : new HookwardenError("E_FUNCTION_OUTPUT_INVALID", 422, `The transformation returned an unusable URL: ${err.message}`);
    return { kind: "error", error, redactor: out.redactor };
  }
}
