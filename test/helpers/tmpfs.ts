import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A small tmpfs of its own, for full-disk tests (we run as root). `unmount()` in afterAll. */
export interface Tmpfs {
  readonly dir: string;
  /** Writes `name` until the file system has no byte left; returns its path. */
  fill(name?: string): string;
  unmount(): void;
}

export function mountTmpfs(sizeMb: number): Tmpfs {
  const dir = mkdtempSync(join(tmpdir(), "hookwarden-tmpfs-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeMb}m,mode=0777`, "tmpfs", dir]);
  return {
    dir,
    fill: (name = "filler") => {
      const path = join(dir, name);
      const fd = openSync(path, "a");
      const chunk = Buffer.alloc(1 << 20, 1);
      try {
        for (const size of [1 << 20, 4096, 1]) {
          const part = chunk.subarray(0, size);
          for (;;) {
            try {
              writeSync(fd, part);
            } catch (err) {
              if ((err as NodeJS.ErrnoException).code === "ENOSPC") break;
              throw err;
            }
          }
        }
      } finally {
        closeSync(fd);
      }
      if (statfsSync(dir).bavail !== 0) throw new Error(`${dir} still has room after filling`);
      return path;
    },
    unmount: () => {
      try {
        execFileSync("umount", ["-l", dir]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
