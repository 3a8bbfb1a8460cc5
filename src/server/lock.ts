import { mkdirSync, openSync, readFileSync, unlinkSync, writeFileSync, closeSync } from "node:fs";
import { join } from "node:path";
import { HookwardenError } from "../errors/index.js";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Embedded SQLite is one process's database: two servers on one data directory would both lease
 * the same jobs. A pid file refuses the second one and, because only one owner can exist, lets the
 * owner release a crashed predecessor's leases at start.
 */
export function lockDataDir(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, "hookwarden.pid");
  for (let i = 0; i < 2; i++) {
    try {
      const fd = openSync(path, "wx", 0o600);
      let written = true;
      try {
        writeFileSync(fd, String(process.pid));
      } catch (err) {
        // A full disk: the exclusive create already made this process the owner; an empty pid
        // file only means a later starter cannot tell whether we are alive (it sees a stale lock).
        if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
        written = false;
      } finally {
        closeSync(fd);
      }
      return () => {
        try {
          const content = readFileSync(path, "utf8");
          if (content === String(process.pid) || (!written && content === "")) unlinkSync(path);
        } catch {
          /* already gone */
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const pid = Number(readFileSync(path, "utf8"));
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new HookwardenError("E_CONFIG", 500, `Another hookwarden (pid ${pid}) is serving ${dataDir}; stop it or use another --data-dir`);
      }
      unlinkSync(path);
    }
  }
  throw new HookwardenError("E_CONFIG", 500, `Could not lock ${dataDir}`);
}
