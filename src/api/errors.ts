import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
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

/**
 * Requests the router refuses before any route or hook runs (Fastify's `frameworkErrors`): a
 * malformed percent-escape in the path (400) or a path parameter over the router's length limit
 * (414), answered in the API's `{code, detail}` shape instead of Fastify's own.
 */
export function frameworkErrors(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  if (error.code === "FST_ERR_BAD_URL") {
    reply.status(400).send({ code: "E_BAD_REQUEST", detail: "The request path holds a malformed percent-escape" });
  } else if (error.code === "FST_ERR_MAX_PARAM_LENGTH") {
    reply.status(414).send({ code: "E_URI_TOO_LONG", detail: "A path parameter is longer than any id the API issues" });
  } else {
    reply.log.error({ err: error }, "router error");
    reply.status(500).send({ code: "E_INTERNAL", detail: "Internal server error" });
  }
}

/**
 * Requests Node's HTTP parser refuses before Fastify sees them (the server's `clientError` event,
 * Fastify's `clientErrorHandler`): a request line plus headers over Node's `maxHeaderSize` (431, RFC 6585
 * section 5), a request not received in time (408), anything that is not valid HTTP (400), each
 * with a `{code, detail}` JSON body. Written straight to the socket, which is then closed, as
 * Node's own handler does: the connection's framing can no longer be trusted.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const [status, code, detail] =
    err.code === "HPE_HEADER_OVERFLOW"
      ? [431, "E_HEADERS_TOO_LARGE", "The request line and headers are larger than the server accepts"]
      : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? [408, "E_REQUEST_TIMEOUT", "The request was not received in time"]
        : [400, "E_BAD_REQUEST", "The request is not valid HTTP"];
  const body = JSON.stringify({ code, detail });
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy(err);
}
