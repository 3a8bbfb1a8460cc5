import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { onAbort } from "./on-abort.js";

describe("onAbort", () => {
  it("puts one listener on the signal however many calls wait, and none once all are cancelled", () => {
    const ctl = new AbortController();
    const offs = Array.from({ length: 200 }, () => onAbort(ctl.signal, () => {}));
    expect(getEventListeners(ctl.signal, "abort")).toHaveLength(1);
    for (const off of offs.slice(0, 199)) off();
    expect(getEventListeners(ctl.signal, "abort")).toHaveLength(1);
    offs[199]!();
    expect(getEventListeners(ctl.signal, "abort")).toHaveLength(0);
    // Cancelling twice changes nothing, and a new call after that is registered afresh.
    offs[0]!();
    const calls: string[] = [];
    onAbort(ctl.signal, () => calls.push("late"));
    ctl.abort();
    expect(calls).toEqual(["late"]);
  });

  it("calls every waiting call once on abort, not the cancelled ones, and leaves no listener", () => {
    const ctl = new AbortController();
    const calls: number[] = [];
    const offs = [0, 1, 2, 3].map((i) => onAbort(ctl.signal, () => calls.push(i)));
    offs[1]!();
    ctl.abort();
    ctl.abort();
    expect(calls).toEqual([0, 2, 3]);
    expect(getEventListeners(ctl.signal, "abort")).toHaveLength(0);
    // Cancelling after the abort is harmless.
    for (const off of offs) off();
  });

  it("lets a call cancel another one during the abort, and registers the same function twice independently", () => {
    const ctl = new AbortController();
    const calls: string[] = [];
    const fn = () => calls.push("twice");
    let offB: () => void = () => {};
    onAbort(ctl.signal, () => {
      calls.push("a");
      offB();
    });
    offB = onAbort(ctl.signal, () => calls.push("b"));
    const offFirst = onAbort(ctl.signal, fn);
    onAbort(ctl.signal, fn);
    offFirst();
    ctl.abort();
    expect(calls).toEqual(["a", "twice"]);
  });

  it("never calls back for a signal that has already aborted, and puts nothing on it", () => {
    const ctl = new AbortController();
    ctl.abort();
    const calls: number[] = [];
    const off = onAbort(ctl.signal, () => calls.push(1));
    expect(getEventListeners(ctl.signal, "abort")).toHaveLength(0);
    off();
    expect(calls).toEqual([]);
  });

  it("keeps separate signals apart", () => {
    const a = new AbortController();
    const b = new AbortController();
    const calls: string[] = [];
    onAbort(a.signal, () => calls.push("a"));
    onAbort(b.signal, () => calls.push("b"));
    a.abort();
    expect(calls).toEqual(["a"]);
    expect(getEventListeners(b.signal, "abort")).toHaveLength(1);
  });
});
