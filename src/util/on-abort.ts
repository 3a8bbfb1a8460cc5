interface Fanout {
  readonly calls: Set<() => void>;
  readonly listener: () => void;
}

/** One entry per signal that has callers waiting; weak, so a dropped signal takes its entry along. */
const fanouts = new WeakMap<AbortSignal, Fanout>();

/**
 * Calls `fn` once when `signal` aborts; the returned function cancels that call. However many
 * calls are waiting on one signal, the signal carries a single listener that fans out to them,
 * and none once they are all cancelled.
 *
 * Why: the worker's shutdown signal is shared by every attempt and agent request in flight (up to
 * `--delivery-concurrency`, 128 by default). A listener each made Node print
 * `MaxListenersExceededWarning` past 10 on every busy node, and one left behind by an agent
 * request that timed out stayed until shutdown. Raising the limit would only hide a real leak.
 *
 * A signal that has already aborted never calls `fn`, as `addEventListener` would not: check
 * `signal.aborted` first.
 *
 * @example
 * const off = onAbort(shutdown, () => request.abort());
 * try { return await request.done; } finally { off(); }
 */
export function onAbort(signal: AbortSignal, fn: () => void): () => void {
  if (signal.aborted) return () => {};
  let fanout = fanouts.get(signal);
  if (!fanout) {
    const calls = new Set<() => void>();
    const listener = () => {
      fanouts.delete(signal);
      for (const call of calls) call();
      calls.clear();
    };
    fanout = { calls, listener };
    fanouts.set(signal, fanout);
    signal.addEventListener("abort", listener, { once: true });
  }
  // A wrapper per registration: the same `fn` registered twice is cancelled independently.
  const call = () => fn();
  const current = fanout;
  current.calls.add(call);
  return () => {
    if (!current.calls.delete(call) || current.calls.size > 0 || fanouts.get(signal) !== current) return;
    fanouts.delete(signal);
    signal.removeEventListener("abort", current.listener);
  };
}
