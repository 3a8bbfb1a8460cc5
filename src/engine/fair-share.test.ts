import { describe, expect, it } from "vitest";
import { FairShare } from "./fair-share.js";

describe("FairShare", () => {
  it("puts a destination at its cap at the node's slots outside the reserve when those are fewer than its own", () => {
    // 32 slots, 4 of them the reserve: one endpoint gets 28 at most, never its 32.
    const fair = new FairShare({ total: 32, perDestination: 32, slowMs: 1_000, now: () => 0 });
    for (let i = 0; i < 27; i++) fair.hold("a");
    expect(fair.atCap("a")).toBe(false);
    fair.hold("a");
    expect(fair.atCap("a")).toBe(true);
    expect(fair.full("a")).toBe(false);
    expect(fair.room("a", 32 - 28)).toBe(0);
  });

  it("is at its cap at its own concurrency on a node with room to spare", () => {
    const fair = new FairShare({ total: 128, perDestination: 32, slowMs: 1_000, now: () => 0 });
    for (let i = 0; i < 31; i++) fair.hold("a");
    expect(fair.atCap("a")).toBe(false);
    fair.hold("a");
    expect([fair.atCap("a"), fair.full("a")]).toEqual([true, true]);
  });

  it("counts the slots all destinations hold, promised or running, until they settle", () => {
    let t = 0;
    const fair = new FairShare({ total: 8, perDestination: 4, slowMs: 1_000, now: () => t });
    fair.hold("a");
    fair.hold("b");
    expect(fair.inUse).toBe(2);
    // A promised slot becomes a running attempt: unheld, then started.
    fair.unhold("a");
    const settle = fair.start("a");
    expect(fair.inUse).toBe(2);
    // Unholding what is not held changes nothing.
    fair.unhold("c");
    expect(fair.inUse).toBe(2);
    t = 5;
    settle();
    fair.unhold("b");
    expect(fair.inUse).toBe(0);
    expect(fair.running("a")).toBe(0);
  });
});
