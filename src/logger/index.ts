import { pino, type Logger } from "pino";

export type { Logger };

/**
 * JSON logs on stdout. Secret-bearing values are `SecretValue`s, which print `******`; the redact
 * list is a second line of defence for plain strings under well-known names.
 */
export function createLogger(opts: { level: string; destination?: NodeJS.WritableStream }): Logger {
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
    opts.destination ?? process.stdout,
  );
}
