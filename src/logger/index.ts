import { pino, type Logger } from "pino";
import { PinoPretty } from "pino-pretty";

export type { Logger };

export type LogFormat = "pretty" | "json";

/**
 * Logs on stdout: JSON lines, or pino-pretty's one coloured line per entry (`format: "pretty"`,
 * the default when the destination is a terminal). Secret-bearing values are `SecretValue`s, which
 * print `******`; the redact list is a second line of defence for plain strings under well-known names.
 */
export function createLogger(opts: { level: string; destination?: NodeJS.WritableStream; format?: LogFormat | undefined }): Logger {
  const destination = opts.destination ?? process.stdout;
  const format = opts.format ?? ((destination as { isTTY?: boolean }).isTTY === true ? "pretty" : "json");
  return pino(
    {
      level: opts.level,
      base: { service: "hookwarden" },
      redact: {
        paths: [
          "req.headers.authorization",
          "headers.authorization",
          "*.headers.authorization",
          "secret",
          "*.secret",
          "key",
          "*.key",
          "token",
          "*.token",
          "password",
          "*.password",
        ],
        censor: "******",
      },
    },
    // In-process and synchronous (no transport worker thread): a line is out before an exit.
    format === "pretty"
      ? PinoPretty({ destination, sync: true, colorize: (destination as { isTTY?: boolean }).isTTY === true, ignore: "pid,hostname,service", translateTime: "SYS:HH:MM:ss.l" })
      : destination,
  );
}
