import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { createLogger } from "../../logger/index.js";
import { startCheckpointer } from "./checkpointer.js";

describe("the SQLite checkpoint thread", () => {
  it("hands checkpoints back (onFailure) and logs an error when the thread cannot work", async () => {
    // A directory where the database should be: the thread's connection cannot open it.
    const dir = mkdtempSync(join(tmpdir(), "hookwarden-ckpt-fail-"));
    const logger = createLogger({ level: "silent" });
    const error = vi.spyOn(logger, "error");
    const onFailure = vi.fn();
    try {
      const checkpointer = startCheckpointer(dir, logger, onFailure);
      await vi.waitFor(() => expect(onFailure).toHaveBeenCalledTimes(1), { timeout: 5_000 });
      expect(error).toHaveBeenCalledWith(expect.anything(), expect.stringContaining("checkpoints run on the main thread again"));
      await checkpointer.stop(); // after a failure: returns at once
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("stops without calling onFailure", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hookwarden-ckpt-stop-"));
    const onFailure = vi.fn();
    try {
      const checkpointer = startCheckpointer(join(dir, "x.db"), createLogger({ level: "silent" }), onFailure);
      await checkpointer.stop();
      expect(onFailure).not.toHaveBeenCalled();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
