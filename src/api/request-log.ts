import type { FastifyInstance } from "fastify";
import type { Logger } from "../logger/index.js";

/**
 * One line per `/api/` request once answered: method, route pattern (never the raw URL), status,
 * milliseconds, and the caller's token id (never the token). Probes (`/health`, `/ready`,
 * `/metrics`) are not logged, nor `/in/…`, whose requests are logged from lifecycle events.
 *
 * Levels: `info` for authenticated callers; an unauthenticated 401 is `debug` (a stranger guessing
 * tokens must not be able to flood the log; 401s are still visible at `--log-level debug`); a 5xx
 * is `error`. Aborted and timed-out clients are `guardConnections`' concern (one line, then a summary).
 *
 * Cost: one object literal and one pino write per request, through a child logger built once.
 */
export function logApiRequests(app: FastifyInstance, logger: Logger): void {
  const log = logger.child({ component: "api" });
  app.addHook("onResponse", (req, reply, done) => {
    if (req.url.startsWith("/api/")) {
      const status = reply.statusCode;
      const line = {
        method: req.method,
        route: req.routeOptions.url ?? "(no route)",
        status,
        ms: Math.round(reply.elapsedTime),
        tokenId: (req as { tokenId?: string }).tokenId ?? null,
      };
      if (status >= 500) log.error(line, "api request");
      else if (line.tokenId === null) log.debug(line, "api request");
      else log.info(line, "api request");
    }
    done();
  });
}
