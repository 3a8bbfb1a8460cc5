const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses `500ms`, `5s`, `5m`, `2h`, `5d` (a bare number means seconds) into milliseconds.
 *
 * @example parseDuration("5m") === 300_000
 */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) throw new Error(`"${text}" is not a duration (e.g. 500ms, 5s, 5m, 2h, 1d)`);
  return Math.round(Number(m[1]) * UNITS[m[2] ?? "s"]!);
}

/** Parses a comma-separated list of durations: `--retry-schedule 1s,5s,5m`. */
export function parseDurationList(text: string): number[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(parseDuration);
}
