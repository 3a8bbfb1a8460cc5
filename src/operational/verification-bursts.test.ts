import { describe, expect, it } from "vitest";
import { VerificationBursts } from "./verification-bursts.js";

describe("VerificationBursts", () => {
  it("reports an input once when it crosses the threshold within a window, then again in a later window", () => {
    const b = new VerificationBursts(3, 60_000);
    expect(b.hit("in_a", 0)).toBeUndefined();
    expect(b.hit("in_a", 10)).toBeUndefined();
    expect(b.hit("in_a", 20)).toEqual({ failures: 3, since: 0 });
    for (let i = 0; i < 100; i++) expect(b.hit("in_a", 30 + i)).toBeUndefined();
    expect(b.hit("in_a", 60_000)).toBeUndefined();
    expect(b.hit("in_a", 60_001)).toBeUndefined();
    expect(b.hit("in_a", 60_002)).toEqual({ failures: 3, since: 60_000 });
  });

  it("counts inputs apart: failures spread over many inputs raise nothing", () => {
    const b = new VerificationBursts(2, 60_000);
    for (let i = 0; i < 50; i++) expect(b.hit(`in_${i}`, i)).toBeUndefined();
  });

  it("stays bounded under a flood of distinct inputs", () => {
    const b = new VerificationBursts(2, 60_000);
    for (let i = 0; i < VerificationBursts.MAX_INPUTS * 2; i++) b.hit(`in_${i}`, 0);
    expect(b.hit(`in_${VerificationBursts.MAX_INPUTS * 2 - 1}`, 1)).toEqual({ failures: 2, since: 0 });
  });
});
