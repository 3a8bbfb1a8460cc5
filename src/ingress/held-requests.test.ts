import { describe, expect, it } from "vitest";
import { FakeClock } from "../clock/index.js";
import { HeldRequests, MAX_HELD } from "./held-requests.js";
import type { StoredRequest } from "./stored-request.js";

const stored = (n: number): StoredRequest => ({ method: "POST", suffix: "", query: "", headers: [["x-n", String(n)]], body: Buffer.alloc(0) });

describe("HeldRequests: ephemeral requests in memory, bounded", () => {
  it("keeps a request until the last of its jobs is over", () => {
    const held = new HeldRequests("wrk_a", new FakeClock(0), 60_000);
    held.hold("req_1", stored(1), 2);
    expect(held.pending).toBe(2);
    held.release("req_1");
    expect(held.get("req_1")).toEqual(stored(1));
    held.release("req_1");
    expect(held.get("req_1")).toBeUndefined();
    expect(held.pending).toBe(0);
    held.release("req_1"); // a late or repeated release changes nothing
    expect(held.pending).toBe(0);
  });

  it("refuses room beyond its bound, and makes room by letting go of requests no job can still need", () => {
    const clock = new FakeClock(0);
    const held = new HeldRequests("wrk_a", clock, 60_000);
    held.hold("req_old", stored(0), MAX_HELD - 1);
    expect(held.hasRoom(1)).toBe(true);
    expect(held.hasRoom(2)).toBe(false);
    clock.advance(60_001);
    // Its jobs were deleted without being finished here (the bucket went): past their lifetime it goes.
    expect(held.hasRoom(2)).toBe(true);
    expect(held.get("req_old")).toBeUndefined();
    expect(held.pending).toBe(0);
  });
});
