import type { FastifyError, FastifyInstance } from "fastify";
import { ZodError } from "zod";
import { HookwardenError, type ValidationItem } from "../errors/index.js";
import { classifyStorageError, isStorageFault } from "../store/errors.js";

/** Zod issues in Svix's 422 item shape. */
export function zodItems(err: ZodError, where: "body" | "query" | "path"): ValidationItem[] {
  return err.issues.map((i) => ({ loc: [where, ...i.path.map(String)], msg: i.message, type: `value_error.${i.code}` }));
}

function body(err: HookwardenError): Record<string, unknown> {
  return err.validation ? { code: err.code, detail: err.validation } : { code: err.code, detail: err.message };
}

/**
 * The only place errors become HTTP. Bodies follow Svix: `{code, detail}`, with `detail` a list of
 * `{loc, msg, type}` for 422. Anything unexpected is logged and answered 500 with no stack trace.
 */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | HookwardenError | ZodError, request, reply) => {
    // A storage fault (database down, disk full) that reached here unclassified still gets its 503/507.
    if (!(error instanceof HookwardenError)) error = classifyStorageError(error) ?? error;
    if (error instanceof HookwardenError) {
      // Storage faults are logged once per streak by the store (`StorageHealth`), not per request.
      if (isStorageFault(error)) request.log.debug({ code: error.code }, "request refused: storage is failing");
      else if (error.status >= 500) request.log.error({ err: error }, "request failed");
      if (error.retryAfter !== undefined) reply.header("retry-after", String(error.retryAfter));
      return reply.status(error.status).send(body(error));
    }
    if (error instanceof ZodError) {
      return reply.status(422).send(body(HookwardenError.validation(zodItems(error, "body"))));
    }
    const status = (error as FastifyError).statusCode;
    const code = (error as FastifyError).code;
    if (status === 413 || code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      return reply.status(413).send({ code: "E_PAYLOAD_TOO_LARGE", detail: "Request body is larger than the configured limit" });
    }
    if (code === "FST_ERR_CTP_INVALID_MEDIA_TYPE" || status === 415) {
      return reply.status(415).send({ code: "E_UNSUPPORTED_MEDIA_TYPE", detail: "Send JSON with content-type: application/json" });
    }
    if (code === "FST_ERR_CTP_EMPTY_JSON_BODY" || code === "FST_ERR_CTP_INVALID_JSON_BODY" || error instanceof SyntaxError) {
      return reply.status(400).send({ code: "E_INVALID_JSON", detail: "Request body is not valid JSON" });
    }
    if (status !== undefined && status >= 400 && status < 500) {
      return reply.status(status).send({ code: "E_VALIDATION", detail: error.message });
    }
    request.log.error({ err: error }, "unhandled error");
    return reply.status(500).send({ code: "E_INTERNAL", detail: "Internal server error" });
  });
  app.setNotFoundHandler((_request, reply) => {
    reply.status(404).send({ code: "E_NOT_FOUND", detail: "No such route" });
  });
}
