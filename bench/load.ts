import { readFileSync, readdirSync } from "node:fs";

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
export const benchNow = (): number => performance.timeOrigin + performance.now();

/** Runs `fn(0..n-1)` with at most `concurrency` calls in flight (closed loop). */
export async function closedLoop(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
}

/**
 * Open-loop load: call `i` is due at `start + i / rate` whether or not earlier calls have
 * finished, so a slow server cannot slow the generator down and hide its own latency
 * (coordinated omission). `fn` receives the intended start time.
 */
export async function openLoop(n: number, ratePerSec: number, fn: (i: number, due: number) => Promise<void>): Promise<void> {
  const start = benchNow();
  const pending: Promise<void>[] = [];
  let i = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = benchNow();
      while (i < n && start + (i * 1000) / ratePerSec <= now) {
        pending.push(fn(i, start + (i * 1000) / ratePerSec));
        i++;
      }
      if (i >= n) resolve();
      else setTimeout(tick, Math.max(0, Math.min(5, start + (i * 1000) / ratePerSec - benchNow())));
    };
    tick();
  });
  await Promise.all(pending);
}

/** Nearest-rank percentile of an ascending-sorted array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** `VmHWM` (peak resident set) and `VmRSS` of a live process, in MB (Linux only). */
export function memoryOf(pid: number): { peakRssMb: number; rssMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
  return { peakRssMb: round(kb("VmHWM") / 1024), rssMb: round(kb("VmRSS") / 1024) };
}

/** CPU time (user + system) a live process has used so far, in ms (Linux, 100 Hz ticks). */
export function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the parenthesised command name, which may itself contain spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * CPU time used so far by every process named `postgres` on this machine (the server and its
 * backends), in ms: the datastore's share of a PostgreSQL run. Backends that exited meanwhile are
 * missed, so keep connections open across the measured window (the gateway's pool does).
 */
export function postgresCpuMs(): number {
  let total = 0;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "postgres") total += cpuMsOf(Number(pid));
    } catch {
      /* exited meanwhile */
    }
  }
  return total;
}
