import type { BrokerCredentials, DestinationKind } from "../destinations/kind.js";
import type { Integration } from "../endpoints/integration.js";
import type { MessageRow } from "../messages/index.js";
import type { SecretValue } from "../vault/secret-value.js";
import type { BuiltRequest } from "./build-request.js";
import type { SendResult } from "./http-sender.js";

/** True for URLs the engine sends over HTTP itself; any other scheme goes to a destination kind. */
export function isHttpUrl(url: string): boolean {
  return /^https?:/i.test(url);
}

/** HTTP-only headers that mean nothing on a broker message. */
const NOT_FOR_BROKERS = new Set(["user-agent"]);

/**
 * Hands a built (signed) request to the destination kind its URL selects. The broker receives the
 * same Standard Webhooks headers and body an HTTP endpoint would, plus `webhook-event-type`; the
 * credentials are the vault secrets the endpoint's `auth` names, never part of the message.
 * Returns the outcome in the HTTP sender's shape, so attempts, retries, breaker and events are
 * recorded by the same code, and the credential values the attempt record must mask.
 */
export async function sendToDestination(
  kind: DestinationKind | undefined,
  built: BuiltRequest,
  msg: Pick<MessageRow, "id" | "event_type">,
  integration: Integration,
  secrets: ReadonlyMap<string, SecretValue>,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<{ result: SendResult; masked: string[] }> {
  const fail = (errorCode: SendResult["errorCode"], errorDetail: string): { result: SendResult; masked: string[] } => ({
    result: { ok: false, statusCode: 0, headers: {}, body: "", durationMs: 0, errorCode, errorDetail },
    masked: [],
  });
  if (!kind) return fail("E_CONNECT", `This server has no destination kind for ${built.url.slice(0, built.url.indexOf(":") + 1)} URLs`);
  let credentials: BrokerCredentials | undefined;
  const auth = integration.auth;
  if (auth?.type === "basic") {
    const password = secrets.get(auth.passwordSecret)?.reveal();
    if (password === undefined) return fail("E_BROKER_AUTH", `The application has no secret named ${auth.passwordSecret}`);
    credentials = { username: auth.username, password };
  } else if (auth?.type === "bearer") {
    const token = secrets.get(auth.tokenSecret)?.reveal();
    if (token === undefined) return fail("E_BROKER_AUTH", `The application has no secret named ${auth.tokenSecret}`);
    credentials = { token };
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(built.headers)) if (!NOT_FOR_BROKERS.has(k)) headers[k] = v;
  headers["webhook-event-type"] = msg.event_type;
  const timestamp = Number(headers["webhook-timestamp"]);
  const out = await kind.deliver({
    url: built.url,
    id: msg.id,
    timestamp,
    eventType: msg.event_type,
    contentType: headers["content-type"] ?? "application/json",
    headers,
    body: built.body,
    credentials,
    timeoutMs,
    ...(signal ? { signal } : {}),
  });
  return {
    result: { ok: out.ok, statusCode: 0, headers: {}, body: out.response, durationMs: out.durationMs, errorCode: out.errorCode, errorDetail: out.errorDetail },
    masked: [credentials?.password, credentials?.token].filter((v): v is string => v !== undefined),
  };
}
