import type { Context } from "../context/index.js";
import { BODY_CIPHERS, isAead, parseBodyKey, type BodyCipher } from "./body-encryption.js";
import { HookwardenError } from "../errors/index.js";
import { compileTemplate, type CompiledTemplate, type RequestTemplateDef } from "../templates/request.js";
import { templateError } from "../templates/parse.js";
import { appSecretNames, loadAppSecrets } from "../applications/vault.js";
import { checkEndpointUrl } from "./url.js";
import { BROKER_URLS } from "../destinations/urls.js";

/** How an endpoint authenticates to the platform it calls; every credential is a vault secret name. */
export type EndpointAuth =
  | { type: "basic"; username: string; passwordSecret: string }
  | { type: "bearer"; tokenSecret: string }
  | { type: "header"; name: string; valueSecret: string }
  | { type: "query"; name: string; valueSecret: string };

export interface BodyEncryption {
  cipher: BodyCipher;
  keySecret: string;
  randomIv: boolean;
}

/** The integration settings of an endpoint (issue: templates, auth, encryption, redaction). */
export interface Integration {
  template: RequestTemplateDef | null;
  auth: EndpointAuth | null;
  encryption: BodyEncryption | null;
  redactResponses: boolean;
  timeoutMs: number | null;
}

export function authSecretName(auth: EndpointAuth): string {
  return auth.type === "basic" ? auth.passwordSecret : auth.type === "bearer" ? auth.tokenSecret : auth.valueSecret;
}

/** Every vault secret an endpoint needs to build its request. */
export function referencedSecrets(i: Integration, compiled: CompiledTemplate | undefined): Set<string> {
  const names = new Set(compiled?.secrets ?? []);
  if (i.auth) names.add(authSecretName(i.auth));
  if (i.encryption) names.add(i.encryption.keySecret);
  return names;
}

/**
 * Checks an endpoint's integration settings when it is saved. Every referenced secret must exist
 * in the application's vault; an encryption key must decrypt to the cipher's key size; AEAD
 * ciphers need random IVs. Returns the compiled template (if any).
 */
export async function checkIntegration(ctx: Context, appId: string, url: string, i: Integration): Promise<CompiledTemplate | undefined> {
  const known = await appSecretNames(ctx.store.db, appId);
  checkBrokerIntegration(url, i);
  const compiled = i.template ? compileTemplate(i.template, url, known) : undefined;
  // A template URL replaces the endpoint URL, so it gets the same save-time checks (no
  // credentials in it, no blocked IP literal); names are checked again on every connection.
  if (compiled && i.template?.url !== undefined) checkEndpointUrl(compiled.origin, ctx.config.allowPrivateNetworks, ["body", "template", "url"]);
  if (i.auth) {
    const name = authSecretName(i.auth);
    if (!known.has(name)) throw templateError(["body", "auth"], `unknown secret ${name}: create it with POST /api/v1/app/{app_id}/secret first`);
    if ((i.auth.type === "header" || i.auth.type === "query") && !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(i.auth.name)) {
      throw HookwardenError.invalidField(["body", "auth", "name"], "Not a valid header or parameter name");
    }
    if (i.auth.type === "basic" && (i.auth.username.includes(":") || /[\r\n]/.test(i.auth.username))) {
      throw HookwardenError.invalidField(["body", "auth", "username"], "A basic-auth username cannot contain ':' or line breaks");
    }
  }
  if (i.encryption) {
    const { cipher, keySecret, randomIv } = i.encryption;
    if (!BODY_CIPHERS.includes(cipher)) throw new HookwardenError("E_ENCRYPTION_INVALID", 422, `cipher must be one of ${BODY_CIPHERS.join(", ")}`);
    if (!known.has(keySecret)) throw templateError(["body", "encryption", "keySecret"], `unknown secret ${keySecret}`);
    if (!randomIv && isAead(cipher)) {
      throw new HookwardenError("E_ENCRYPTION_INVALID", 422, `${cipher} requires randomIv: true (a repeated nonce breaks AEAD ciphers)`, {
        validation: [{ loc: ["body", "encryption", "randomIv"], msg: "AEAD ciphers require a random IV", type: "value_error" }],
      });
    }
    const key = (await loadAppSecrets(ctx, appId, [keySecret])).get(keySecret)!;
    parseBodyKey(key.reveal(), cipher);
  }
  if (i.timeoutMs !== null && (i.timeoutMs < 1 || i.timeoutMs > 30_000)) {
    throw HookwardenError.invalidField(["body", "timeoutMs"], "must be between 1 and 30000");
  }
  return compiled;
}

/**
 * A broker destination publishes the signed payload as it is: no HTTP template, and `auth` only of
 * the types its kind understands (its credentials come from the vault at connection time).
 */
function checkBrokerIntegration(url: string, i: Integration): void {
  const spec = BROKER_URLS.get(url.slice(0, url.indexOf(":") + 1).toLowerCase());
  if (!spec) return;
  if (i.template) throw HookwardenError.invalidField(["body", "template"], "Request templates apply to HTTP endpoints only; a broker receives the signed payload");
  if (i.auth && !(spec.auth as readonly string[]).includes(i.auth.type)) {
    throw HookwardenError.invalidField(["body", "auth", "type"], `${spec.kind} destinations take auth of type ${spec.auth.join(" or ")}`);
  }
}
