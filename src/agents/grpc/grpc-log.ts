import { format } from "node:util";
import { setLogger } from "@grpc/grpc-js";
import type { Logger } from "../../logger/index.js";

/**
 * grpc-js writes its own errors to stderr with `console.error` (a failed bind printed
 * "E No address added out of total 1 resolved" above the CLI's one-line explanation). What it
 * reports also reaches us through its callbacks and statuses, so its lines (and GRPC_TRACE output)
 * go to our logger at debug level. grpc-js has one logger per process: the last caller wins.
 */
export function routeGrpcLogs(logger: Logger): void {
  const line = (...args: unknown[]) => logger.debug({ grpc: format(...args) }, "grpc-js");
  setLogger({ error: line, info: line, debug: line });
}
