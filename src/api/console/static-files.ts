import { readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join, relative, sep } from "node:path";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".json": "application/json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
};

export interface StaticFile {
  body: Buffer;
  type: string;
}

/**
 * Every file of the built console (`dist/web`), read once at start into a map keyed by URL path.
 * A request can only ever name one of these keys, so no path it sends (`..`, `%2e%2e`, NUL,
 * symlinks) reaches the file system. The bundle is a few hundred KB.
 */
export function loadStaticFiles(root: string): Map<string, StaticFile> | undefined {
  try {
    if (!statSync(root).isDirectory()) return undefined;
  } catch {
    return undefined;
  }
  const files = new Map<string, StaticFile>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) {
        const type = TYPES[extname(entry.name).toLowerCase()];
        if (type) files.set("/" + relative(root, full).split(sep).join("/"), { body: readFileSync(full), type });
      }
    }
  };
  walk(root);
  return files.has("/index.html") ? files : undefined;
}
