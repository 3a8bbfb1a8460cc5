import type { Config } from "../config/index.js";
import { DEFAULT_ORG } from "../auth/bootstrap.js";
import { startHookwarden } from "../server/index.js";

/** A repeated stop signal sooner than this after the first is a copy of it, not a second request. */
const DUPLICATE_SIGNAL_WINDOW_MS = 1_000;

/** `hookwarden serve`: runs until SIGINT/SIGTERM, then shuts down gracefully. */
export async function serve(config: Config): Promise<void> {
  const hw = await startHookwarden(config);
  const role = hw.ctx.config.role;
  const what = role === "api" ? ", role api: HTTP API and /in, no delivery worker" : role === "worker" ? ", role worker: deliveries; /health, /ready and /metrics only" : "";
  const lines = [`Hookwarden is listening on ${hw.url} (${hw.ctx.store.dialect}${what})`];
  if (hw.bootstrapToken) {
    lines.push(
      "",
      "First start: an admin API token was created. It is shown only this once; store it now:",
      "",
      `    ${hw.bootstrapToken.reveal()}`,
      "",
      `It belongs to the organisation "${DEFAULT_ORG}". Try: curl -H "Authorization: Bearer <token>" ${hw.url}/api/v1/app`,
    );
  }
  lines.push(`Another API token: hookwarden token create --org ${DEFAULT_ORG} --name NAME (hookwarden org list shows every organisation)`);
  process.stderr.write(`${lines.join("\n")}\n`);
  let firstSignalAt: number | undefined;
  const shutdown = (signal: string) => {
    const now = hw.ctx.clock.now();
    if (firstSignalAt !== undefined) {
      // Under `npm start` one Ctrl-C arrives twice: the terminal signals the whole process group
      // and npm forwards its own copy to this process (@npmcli/run-script's signal manager).
      // Only a signal a person sends again later forces the exit and skips the graceful stop.
      if (now - firstSignalAt >= DUPLICATE_SIGNAL_WINDOW_MS) process.exit(130);
      return;
    }
    firstSignalAt = now;
    hw.ctx.logger.info({ signal }, "shutting down");
    hw.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        hw.ctx.logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGTERM", () => shutdown("SIGTERM"));
}
