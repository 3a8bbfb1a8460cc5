import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

/**
 * ARCHITECTURE.md's "Layers": no import cycle between top-level folders of src/. An import that
 * closes one fails this test with the files that make it. Should a cycle ever have to be lived
 * with for a while, its edge goes here (and the second test fails once it is gone): empty since
 * issue 10 removed the last ones.
 */
const KNOWN_BACK_EDGES = new Set<string>([]);

const SRC = resolve(import.meta.dirname, "../../src");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return /\.tsx?$/.test(e.name) && !/\.test\.tsx?$/.test(e.name) ? [p] : [];
  });
}

/** folder → folder → the files of the first that import the second. */
function folderGraph(): Map<string, Map<string, string[]>> {
  const graph = new Map<string, Map<string, string[]>>();
  for (const file of sources(SRC)) {
    const from = relative(SRC, file).split("/")[0]!;
    if (!graph.has(from)) graph.set(from, new Map());
    for (const ref of ts.preProcessFile(readFileSync(file, "utf8"), true, true).importedFiles) {
      if (!ref.fileName.startsWith(".")) continue;
      const target = relative(SRC, resolve(dirname(file), ref.fileName));
      if (target.startsWith("..")) continue;
      const to = target.split("/")[0]!;
      if (to === from || /\.[cm]?[jt]sx?$/.test(to)) continue;
      const files = graph.get(from)!.get(to) ?? [];
      files.push(relative(SRC, file));
      graph.get(from)!.set(to, files);
    }
  }
  return graph;
}

/** Strongly connected components with more than one folder (Tarjan). */
function cycles(edges: Map<string, Set<string>>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of edges.keys()) if (!idx.has(v)) visit(v);
  return out;
}

describe("layers of src/", () => {
  const graph = folderGraph();

  it("has no import cycle between top-level folders (beyond any edge listed as known)", () => {
    const edges = new Map<string, Set<string>>();
    for (const [from, tos] of graph) edges.set(from, new Set([...tos.keys()].filter((to) => !KNOWN_BACK_EDGES.has(`${from} -> ${to}`))));
    const found = cycles(edges).map((scc) => {
      const inside = new Set(scc);
      const why = scc.flatMap((from) => [...(graph.get(from) ?? [])].filter(([to]) => inside.has(to)).map(([to, files]) => `${from} -> ${to} (${[...new Set(files)].join(", ")})`));
      return { folders: scc, why };
    });
    expect(found).toEqual([]);
  });

  it("lists only known edges that still exist", () => {
    const stale = [...KNOWN_BACK_EDGES].filter((e) => {
      const [from, to] = e.split(" -> ") as [string, string];
      return !graph.get(from)?.has(to);
    });
    expect(stale).toEqual([]);
  });

  it("matches ARCHITECTURE.md's picture: every folder is on it, and imports only its own line or lines below", () => {
    const doc = readFileSync(resolve(SRC, "../ARCHITECTURE.md"), "utf8");
    const picture = doc.split("## Layers")[1]!.split("```")[1]!.trim().split("\n");
    const line = new Map<string, number>();
    picture.forEach((text, i) => {
      for (const m of text.split(/\s{2,}/)[0]!.matchAll(/([a-z-]+)\//g)) if (!line.has(m[1]!)) line.set(m[1]!, picture.length - i);
    });
    const missing = [...graph.keys()].filter((f) => !line.has(f) && !/\.[cm]?[jt]sx?$/.test(f));
    expect(missing).toEqual([]);
    const upwards = [...graph].flatMap(([from, tos]) => [...tos].filter(([to]) => (line.get(to) ?? 0) > (line.get(from) ?? 0)).map(([to, files]) => `${from} -> ${to} (${[...new Set(files)].join(", ")})`));
    expect(upwards).toEqual([]);
  });

  it("keeps the engine free of destination kinds: engine/ imports none, the kinds import engine/", () => {
    const kinds = ["delivery", "ingress", "agents", "destinations"];
    const engine = graph.get("engine");
    expect(engine, "src/engine/ exists").toBeDefined();
    expect([...engine!.keys()].filter((to) => kinds.includes(to))).toEqual([]);
    expect(graph.get("delivery")?.get("engine")).toContain("delivery/endpoint-kind.ts");
    expect(graph.get("ingress")?.get("engine")).toContain("ingress/forward-kind.ts");
  });

  it("keeps dialect differences in store/: nothing outside it asks which database it is", () => {
    const asking = sources(SRC)
      .filter((f) => !relative(SRC, f).startsWith("store/"))
      .filter((f) => /\.dialect\s*[!=]==|dialect\s*[!=]==\s*["'](sqlite|postgres)["']/.test(readFileSync(f, "utf8")))
      .map((f) => relative(SRC, f));
    expect(asking).toEqual([]);
  });

  it("sees the imports it checks (a folder graph this small would mean the parse broke)", () => {
    expect(graph.get("api")?.has("store")).toBe(true);
    expect([...graph.keys()].length).toBeGreaterThan(30);
  });
});
