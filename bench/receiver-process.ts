import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { FromReceiver, ToReceiver } from "./receiver.js";

/** The parent's handle on `bench/receiver.ts` running in its own process. */
export class ReceiverProcess {
  readonly #child: ChildProcess;
  readonly url: string;
  #listeners = new Set<(msg: FromReceiver) => void>();

  private constructor(child: ChildProcess, port: number) {
    this.#child = child;
    this.url = `http://127.0.0.1:${port}`;
    child.on("message", (msg: FromReceiver) => {
      for (const l of this.#listeners) l(msg);
    });
  }

  static async start(): Promise<ReceiverProcess> {
    const child = fork(fileURLToPath(new URL("./receiver.ts", import.meta.url)), [], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    process.once("exit", () => child.kill("SIGKILL"));
    const port = await new Promise<number>((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", (code) => reject(new Error(`receiver exited during start (code ${code})`)));
      child.once("message", (msg: FromReceiver) => {
        if (msg.type === "ready") resolve(msg.port);
      });
    });
    return new ReceiverProcess(child, port);
  }

  get pid(): number {
    return this.#child.pid!;
  }

  #next<T extends FromReceiver["type"]>(type: T, timeoutMs: number): Promise<Extract<FromReceiver, { type: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#listeners.delete(listener);
        reject(new Error(`receiver: no "${type}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (msg: FromReceiver) => {
        if (msg.type !== type) return;
        clearTimeout(timer);
        this.#listeners.delete(listener);
        resolve(msg as Extract<FromReceiver, { type: T }>);
      };
      this.#listeners.add(listener);
    });
  }

  #send(msg: ToReceiver): void {
    this.#child.send(msg);
  }

  /**
   * Starts a fresh tracking window and resolves once the receiver has started it (so no request
   * sent afterwards can miss it). `done` resolves once `n` distinct webhook ids have arrived,
   * with the first and last arrival times (ms, comparable with `benchNow()`).
   */
  async track(n: number, timeoutMs: number): Promise<{ done: Promise<Extract<FromReceiver, { type: "done" }>> }> {
    const started = this.#next("tracking", 30_000);
    const done = this.#next("done", timeoutMs);
    done.catch(() => {}); // observed by the caller through `done`
    this.#send({ type: "track", n });
    await started;
    return { done };
  }

  /** First arrival time of every webhook id seen in the current window. */
  async arrivals(): Promise<Map<string, number>> {
    const reply = this.#next("arrivals", 30_000);
    this.#send({ type: "arrivals" });
    const { ids, at } = await reply;
    return new Map(ids.map((id, i) => [id, at[i]!]));
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#child.once("exit", () => resolve()));
    this.#send({ type: "stop" });
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  }
}
