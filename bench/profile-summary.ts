/**
 * Summarises V8 CPU profiles (`node --cpu-prof`, or `BENCH_PROFILE=1 npm run bench`): self time
 * per function and per module (package or source folder), busiest first.
 *
 *   npx tsx bench/profile-summary.ts /tmp/hookwarden-profiles/e2e-sqlite-*.cpuprofile [--top 30]
 *       [--timeline]        busy share of the main thread per 250 ms (find the peak phase)
 *       [--window 0.75,2]   only samples between these seconds from the profile's start
 *
 * Self time of `executeQuery` in Kysely's SQLite driver is SQLite itself (better-sqlite3 runs
 * the statement synchronously inside it); it is listed as "(sqlite)".
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** `node_modules/<pkg>`, the gateway's own folder (`dist/queue`), `node:internal`, or V8's pseudo-frames. */
function moduleOf(url: string, name: string): string {
  if (!url) return name.startsWith("(") ? name : "(native)";
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  const own = /\/(?:dist|src)\/([^/]+)\//.exec(url);
  if (own) return `hookwarden/${own[1]}`;
  if (url.startsWith("node:")) return url.split("/").slice(0, 2).join("/");
  return url;
}

const args = process.argv.slice(2);
const valueOf = (flag: string) => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};
const top = Number(valueOf("--top") ?? 30);
const timeline = args.includes("--timeline");
const [from, to] = (valueOf("--window") ?? "0,Infinity").split(",").map(Number) as [number, number];
const files = args.filter((a, i) => !a.startsWith("--") && !["--top", "--window"].includes(args[i - 1] ?? ""));
if (files.length === 0) {
  process.stderr.write("usage: tsx bench/profile-summary.ts FILE.cpuprofile... [--top N]\n");
  process.exit(2);
}

const byFunction = new Map<string, number>();
const byModule = new Map<string, number>();
let total = 0;
for (const file of files) {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const slots = new Map<number, { busy: number; all: number }>();
  let at = 0;
  // Self time: each sample's delta belongs to the frame on top of the stack at that sample.
  for (let i = 0; i < profile.samples.length; i++) {
    const node = nodes.get(profile.samples[i]!);
    const us = profile.timeDeltas[i] ?? 0;
    at += us;
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (timeline) {
      const slot = slots.get(Math.floor(at / 250_000)) ?? { busy: 0, all: 0 };
      slot.all += us;
      if (functionName !== "(idle)") slot.busy += us;
      slots.set(Math.floor(at / 250_000), slot);
      continue;
    }
    if (at / 1e6 < from || at / 1e6 > to) continue;
    const name = functionName || "(anonymous)";
    const where = url ? `${url.replace(/^file:\/\/.*?\/(node_modules|dist|src)\//, "$1/")}:${lineNumber + 1}` : "";
    byFunction.set(`${name} ${where}`.trim(), (byFunction.get(`${name} ${where}`.trim()) ?? 0) + us);
    const mod = name === "executeQuery" && url.includes("sqlite-driver") ? "(sqlite)" : moduleOf(url, name);
    byModule.set(mod, (byModule.get(mod) ?? 0) + us);
    total += us;
  }
  if (timeline) {
    process.stdout.write(`${file}\n`);
    for (const [k, v] of [...slots].sort((a, b) => a[0] - b[0])) process.stdout.write(`${((k * 250) / 1000).toFixed(2).padStart(7)} s  ${((v.busy / v.all) * 100).toFixed(0).padStart(3)}% busy\n`);
  }
}
if (timeline) process.exit(0);

const busy = total - (byModule.get("(idle)") ?? 0);
const row = (us: number) => `${(us / 1000).toFixed(0).padStart(8)} ms ${((us / busy) * 100).toFixed(1).padStart(5)}%`;
process.stdout.write(`profiles: ${files.length}, sampled ${(total / 1e6).toFixed(1)} s, busy (not idle) ${(busy / 1e6).toFixed(1)} s; % of busy time\n\n`);
process.stdout.write("self time by module\n");
for (const [k, v] of [...byModule].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${row(v)}  ${k}\n`);
process.stdout.write("\nself time by function\n");
for (const [k, v] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${row(v)}  ${k}\n`);
