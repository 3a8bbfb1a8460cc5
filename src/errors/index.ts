/**
 * One error type for the whole program. Business code throws `HookwardenError` with a stable
 * machine code; only the HTTP edge (`src/api/errors.ts`) turns it into a response, and only the
 * delivery engine turns it into an attempt's `errorCode`.
 *
 * @example
 * throw new HookwardenError("E_NOT_FOUND", 404, "Application not found");
 */
export type ErrorCode =
  | "E_VALIDATION"
  | "E_INVALID_JSON"
  | "E_JSON_TOO_DEEP"
  | "E_NUL_CHARACTER"
  | "E_BAD_REQUEST"
  | "E_HEADERS_TOO_LARGE"
  | "E_URI_TOO_LONG"
  | "E_REQUEST_TIMEOUT"
  | "E_UNSUPPORTED_MEDIA_TYPE"
  | "E_PAYLOAD_TOO_LARGE"
  | "E_NOT_FOUND"
  | "E_CONFLICT"
  | "E_UNAUTHORIZED"
  | "E_FORBIDDEN"
  | "E_SECRET_WRITE_ONLY"
  | "E_SECRET_FORMAT"
  | "E_SECRET_TOO_SHORT"
  | "E_SECRET_WEAK"
  | "E_SECRET_TOO_LONG"
  | "E_SECRET_IN_USE"
  | "E_TEMPLATE_INVALID"
  | "E_TEMPLATE_RENDER"
  | "E_TEMPLATE_OUTPUT_TOO_LARGE"
  | "E_FUNCTION_SYNTAX"
  | "E_FUNCTION_ERROR"
  | "E_FUNCTION_TIMEOUT"
  | "E_FUNCTION_MEMORY"
  | "E_FUNCTION_OUTPUT_TOO_LARGE"
  | "E_FUNCTION_OUTPUT_INVALID"
  | "E_FUNCTION_CANCELLED"
  | "E_ENCRYPTION_INVALID"
  | "E_AGENT_UNAVAILABLE"
  | "E_AGENT_DISCONNECTED"
  | "E_AGENT_RESEND_EXPIRED"
  | "E_EPHEMERAL_LOST"
  | "E_SSRF_BLOCKED"
  | "E_TIMEOUT"
  | "E_CONNECT"
  | "E_DNS"
  | "E_TLS"
  | "E_HTTP_STATUS"
  | "E_ENDPOINT_AUTH"
  // Standard Webhooks: a 410 disables the endpoint; a 429/503 with Retry-After delays the retry.
  | "E_ENDPOINT_GONE"
  | "E_RETRY_AFTER"
  | "E_RESPONSE_TOO_LARGE"
  | "E_ENDPOINT_DISABLED"
  /** Issue 11: the message's payload expired (retention) or was expunged. */
  | "E_CONTENT_EXPIRED"
  | "E_MASTER_KEY"
  // Broker destinations (src/destinations/): the broker refused or did not confirm a message.
  | "E_BROKER_AUTH"
  | "E_BROKER_NOT_FOUND"
  | "E_BROKER_UNROUTABLE"
  | "E_BROKER_NACK"
  | "E_BROKER_REJECTED"
  | "E_CONFIG"
  | "E_INTERNAL"
  | "E_UNAVAILABLE"
  | "E_STORAGE_FULL"
  /** Issue 13: a caller holds as many live tails (event streams) as it may. */
  | "E_TOO_MANY_STREAMS";

/** One item of a 422 body, in Svix's shape: `{loc: ["body", "url"], msg, type}`. */
export interface ValidationItem {
  loc: string[];
  msg: string;
  type: string;
}

export class HookwardenError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly validation: ValidationItem[] | undefined;
  /** Seconds a client should wait before retrying (the edge sends it as `Retry-After`). */
  readonly retryAfter: number | undefined;

  constructor(
    code: ErrorCode,
    status: number,
    detail: string,
    options: { cause?: unknown; validation?: ValidationItem[]; retryAfter?: number } = {},
  ) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "HookwardenError";
    this.code = code;
    this.status = status;
    this.validation = options.validation;
    this.retryAfter = options.retryAfter;
  }

  static notFound(what: string): HookwardenError {
    return new HookwardenError("E_NOT_FOUND", 404, `${what} not found`);
  }

  static validation(items: ValidationItem[]): HookwardenError {
    const first = items[0];
    const detail = first ? `${first.loc.join(".")}: ${first.msg}` : "Validation failed";
    return new HookwardenError("E_VALIDATION", 422, detail, { validation: items });
  }

  static invalidField(loc: string[], msg: string, code: ErrorCode = "E_VALIDATION"): HookwardenError {
    return new HookwardenError(code, 422, msg, { validation: [{ loc, msg, type: "value_error" }] });
  }
}

/** True when `err` is a HookwardenError with the given code. */
export function hasCode(err: unknown, code: ErrorCode): boolean {
  return err instanceof HookwardenError && err.code === code;
}
