import type { Context } from "../context/index.js";
import { integrationOf, readHeaders, type EndpointRow } from "../endpoints/index.js";
import { referencedSecrets, type Integration } from "../endpoints/integration.js";
import { loadSigningKeys } from "../endpoints/secrets.js";
import type { SigningKey } from "../signing/standard-webhooks.js";
import { compileTemplate, type CompiledTemplate } from "../templates/request.js";
import { loadAppSecrets } from "../applications/vault.js";
import type { SecretValue } from "../vault/secret-value.js";
import { HookwardenError } from "../errors/index.js";
import type { EndpointTransformation } from "./endpoint-transform.js";

/** Everything needed to build an endpoint's requests, decrypted for one batch of attempts. */
export interface EndpointContext {
  integration: Integration;
  compiled: CompiledTemplate | undefined;
  customHeaders: Record<string, string>;
  signingKeys: SigningKey[];
  secrets: Map<string, SecretValue>;
  /** Vault secrets this endpoint needs that failed to decrypt: its attempts fail with `E_MASTER_KEY`. */
  unreadable?: string[];
  /**
   * Why this endpoint's requests cannot be built at all (a stored template that no longer
   * compiles, headers that do not decrypt): its attempts fail with this error, other endpoints
   * of the batch are unaffected.
   */
  broken?: HookwardenError;
  /** Its transformation when the batch loaded them (`null`: it has none); absent: not loaded. */
  transformation?: EndpointTransformation | null;
}

/** True when the endpoint sends something other than Svix's plain signed POST of the payload. */
export function isCustomised(i: Integration): boolean {
  return i.template !== null || i.auth !== null || i.encryption !== null;
}

/** Loads and decrypts what `endpoints` need; one query per kind, whatever the number of endpoints. */
export async function loadEndpointContexts(
  ctx: Context,
  endpoints: readonly EndpointRow[],
  now: number,
  opts: { withSecrets?: boolean; keys?: Map<string, SigningKey[]>; transformations?: ReadonlyMap<string, EndpointTransformation> } = {},
): Promise<Map<string, EndpointContext>> {
  const signed = endpoints.filter((e) => e.signature_scheme !== "none").map((e) => e.id);
  // `keys`: loaded by the caller together with the endpoint rows (one round trip fewer).
  const keys = opts.keys ?? (await loadSigningKeys(ctx, signed, now));
  const out = new Map<string, EndpointContext>();
  const wanted = new Map<string, Set<string>>();
  for (const ep of endpoints) {
    const integration = integrationOf(ep);
    const signingKeys = ep.signature_scheme === "none" ? [] : (keys.get(ep.id) ?? []);
    const c: EndpointContext = { integration, compiled: undefined, customHeaders: {}, signingKeys, secrets: new Map() };
    if (opts.transformations) c.transformation = opts.transformations.get(ep.id) ?? null;
    out.set(ep.id, c);
    try {
      c.compiled = integration.template ? compileTemplate(integration.template, ep.url) : undefined;
      c.customHeaders = readHeaders(ctx, ep);
    } catch (err) {
      c.broken = err instanceof HookwardenError ? err : new HookwardenError("E_TEMPLATE_RENDER", 422, "The endpoint's stored request settings cannot be used");
      ctx.logger.error({ endpointId: ep.id, code: c.broken.code }, "endpoint settings cannot be used; its attempts fail until it is updated");
      continue;
    }
    const names = referencedSecrets(integration, c.compiled);
    if (names.size > 0 && opts.withSecrets !== false) wanted.set(ep.app_id, new Set([...(wanted.get(ep.app_id) ?? []), ...names]));
  }
  const byApp = new Map<string, Map<string, SecretValue>>();
  const unreadable = new Map<string, Set<string>>();
  for (const [appId, names] of wanted) {
    const bad = new Set<string>();
    byApp.set(appId, await loadAppSecrets(ctx, appId, names, bad));
    if (bad.size > 0) {
      unreadable.set(appId, bad);
      ctx.logger.error({ appId, secrets: [...bad] }, "vault secrets failed to decrypt (copied from another row, or sealed under a master key this server does not have)");
    }
  }
  for (const ep of endpoints) {
    const c = out.get(ep.id)!;
    const secrets = byApp.get(ep.app_id);
    if (secrets) c.secrets = secrets;
    const bad = unreadable.get(ep.app_id);
    if (bad) {
      const mine = [...referencedSecrets(c.integration, c.compiled)].filter((n) => bad.has(n));
      if (mine.length > 0) c.unreadable = mine;
    }
  }
  return out;
}
