import type { Config } from "../config/index.js";
import { startHookwarden } from "../server/index.js";

/** `hookwarden serve`: runs until SIGINT/SIGTERM, then shuts down gracefully. */
export async function serve(config: Config): Promise<void> {
  const hw = await startHookwarden(config);
  const lines = [`Hookwarden is listening on ${hw.url} (${hw.ctx.store.dialect})`];
  if (hw.bootstrapToken) {
    lines.push(
      "",
      "First start: an admin API token was created. It is shown only this once; store it now:",
      "",
      `    ${hw.bootstrapToken.reveal()}`,
      "",
      `Try: curl -H "Authorization: Bearer <token>" ${hw.url}/api/v1/app`,
    );
  }
  process.stderr.write(`${lines.join("\n")}\n`);
  let signals = 0;
  const shutdown = (signal: string) => {
    if (++signals > 1) process.exit(130);
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
