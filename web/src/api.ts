/** The console's one way to call the gateway: same-origin cookie session plus the CSRF header. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
  ) {
    super(detail);
  }
}

export async function call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { "x-hookwarden-console": "1" };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const err = (parsed ?? {}) as { code?: string; detail?: unknown };
    throw new ApiError(res.status, err.code ?? `HTTP_${res.status}`, typeof err.detail === "string" ? err.detail : (validationText(err.detail) ?? text.slice(0, 200)));
  }
  return parsed as T;
}

/** A 422's items (`[{loc: ["body", "template", "url"], msg}]`) as one line a person reads. */
function validationText(detail: unknown): string | undefined {
  if (!Array.isArray(detail) || detail.length === 0) return undefined;
  return detail
    .map((d: { loc?: unknown; msg?: unknown }) => `${Array.isArray(d.loc) ? d.loc.join(".") : "?"}: ${typeof d.msg === "string" ? d.msg : "invalid"}`)
    .join("; ");
}

export interface ListOut<T> {
  data: T[];
  done: boolean;
  iterator: string | null;
}

export interface AppOut {
  id: string;
  uid: string | null;
  name: string;
  createdAt: string;
}

export interface EndpointOut {
  id: string;
  url: string;
  description: string;
  disabled: boolean;
  createdAt: string;
  secret?: string;
}

export interface MessageOut {
  id: string;
  eventType: string;
  payload?: unknown;
  timestamp: string;
}

export interface AttemptOut {
  id: string;
  msgId: string;
  endpointId: string;
  url: string;
  response: string;
  responseStatusCode: number;
  responseDurationMs: number | null;
  statusText: string;
  triggerType: number;
  timestamp: string;
  errorCode: string | null;
  request: unknown;
}

export const enc = encodeURIComponent;
