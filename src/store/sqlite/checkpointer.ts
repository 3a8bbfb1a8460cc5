import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import type { Logger } from "pino";

/** How often the checkpointer copies the write-ahead log into the database file. */
const INTERVAL_MS = 200;

/**
 * The worker's code (CommonJS, run with `eval`, so it needs no file of its own in dist/ or src/).
 * Its own connection runs `wal_checkpoint(PASSIVE)`: it copies what it can without waiting for
 * (or blocking) the gateway's connection, and syncs the database file.
 */
const WORKER_CODE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.module);
const db = new Database(workerData.path);
let timer;
let failed = false;
const tick = () => {
  try {
    db.pragma("wal_checkpoint(PASSIVE)");
    if (failed) parentPort.postMessage({ type: "ok" });
    failed = false;
  } catch (err) {
    failed = true;
    parentPort.postMessage({ type: "error", message: String(err && err.message || err) });
  }
  timer = setTimeout(tick, workerData.intervalMs);
};
parentPort.on("message", (msg) => {
  if (msg !== "stop") return;
  clearTimeout(timer);
  db.close();
  parentPort.postMessage({ type: "stopped" });
});
tick();
`;

export interface Checkpointer {
  stop(): Promise<void>;
}

/**
 * Moves SQLite's WAL checkpoints off the event loop. By default the connection that commits runs
 * a checkpoint every 1,000 WAL pages, inside that commit: copying the pages and syncing the
 * database file blocked the event loop for 5-10 ms a few times a second at full ingest (commits
 * measured with a statement timer: 155 µs on average, 11 over 5 ms in one run; 117 µs and 2
 * without checkpoints). The caller turns automatic checkpoints off on its connection and this
 * worker thread checkpoints every 200 ms instead. If the worker fails, `onFailure` is told so
 * that the caller can turn automatic checkpoints back on: the WAL never grows without bound.
 */
export function startCheckpointer(path: string, logger: Logger, onFailure: () => void): Checkpointer {
  const worker = new Worker(WORKER_CODE, {
    eval: true,
    workerData: { path, module: createRequire(import.meta.url).resolve("better-sqlite3"), intervalMs: INTERVAL_MS },
  });
  worker.unref();
  let failed = false;
  const fail = (err: unknown) => {
    if (failed) return;
    failed = true;
    logger.error({ err }, "the SQLite checkpoint thread failed; checkpoints run on the main thread again");
    onFailure();
  };
  let stopped: (() => void) | undefined;
  // Every 200 ms on a full disk would be 300 identical lines a minute: once per streak instead.
  let failing = 0;
  worker.on("message", (msg: { type: string; message?: string }) => {
    if (msg.type === "stopped") stopped?.();
    else if (msg.type === "error") {
      if (failing++ === 0) logger.warn({ err: msg.message }, "SQLite checkpoints are failing; retrying every 200 ms");
    } else if (msg.type === "ok" && failing > 0) {
      logger.info({ failed: failing }, "SQLite checkpoints work again");
      failing = 0;
    }
  });
  worker.on("error", fail);
  worker.on("exit", (code) => {
    stopped?.();
    if (!stopped) fail(new Error(`checkpoint thread exited (code ${code})`));
  });
  return {
    stop: async () => {
      if (failed) return;
      failed = true; // a stop is not a failure: no more fallbacks
      const done = new Promise<void>((resolve) => (stopped = resolve));
      worker.postMessage("stop");
      await done;
      await worker.terminate();
    },
  };
}
