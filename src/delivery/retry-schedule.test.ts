import { describe, expect, it } from "vitest";
import { SVIX_RETRY_SCHEDULE } from "../config/index.js";
import { nextRunAt } from "./retry-schedule.js";

const NOW = 1_700_000_000_000;
const fixed = (r: number) => () => r;

describe("nextRunAt", () => {
  it("after attempt n fails, waits schedule[n] when the jitter is centred", () => {
    SVIX_RETRY_SCHEDULE.forEach((delay, attempt) => {
      expect(nextRunAt(SVIX_RETRY_SCHEDULE, attempt, NOW, fixed(0.5))).toBe(NOW + delay);
    });
  });

  it("keeps the jitter within ±20% of the delay", () => {
    expect(nextRunAt([5_000], 0, NOW, fixed(0))).toBe(NOW + 4_000);
    expect(nextRunAt([5_000], 0, NOW, fixed(0.999999))).toBe(NOW + 6_000);
    expect(nextRunAt([36_000_000], 0, NOW, fixed(0))).toBe(NOW + 28_800_000);
    expect(nextRunAt([36_000_000], 0, NOW, fixed(0.25))).toBe(NOW + 32_400_000);
    for (let i = 0; i <= 100; i++) {
      const at = nextRunAt([300_000], 0, NOW, fixed(i / 101))!;
      expect(at).toBeGreaterThanOrEqual(NOW + 240_000);
      expect(at).toBeLessThanOrEqual(NOW + 360_000);
      expect(Number.isInteger(at)).toBe(true);
    }
  });

  it("spreads retries out with the real random source", () => {
    const times = new Set(Array.from({ length: 50 }, () => nextRunAt([300_000], 0, NOW)));
    expect(times.size).toBeGreaterThan(40);
    for (const t of times) {
      expect(t).toBeGreaterThanOrEqual(NOW + 240_000);
      expect(t).toBeLessThanOrEqual(NOW + 360_000);
    }
  });

  it("retries an immediate (0 ms) step immediately, with no jitter", () => {
    expect(nextRunAt([0, 1_000], 0, NOW, fixed(0.9))).toBe(NOW);
  });

  it("returns undefined once the schedule is used up", () => {
    expect(nextRunAt(SVIX_RETRY_SCHEDULE, SVIX_RETRY_SCHEDULE.length - 1, NOW, fixed(0.5))).toBe(NOW + 36_000_000);
    expect(nextRunAt(SVIX_RETRY_SCHEDULE, SVIX_RETRY_SCHEDULE.length, NOW, fixed(0.5))).toBeUndefined();
    expect(nextRunAt(SVIX_RETRY_SCHEDULE, 100, NOW)).toBeUndefined();
    expect(nextRunAt([], 0, NOW)).toBeUndefined();
  });

  it("gives a message 1 + schedule.length attempts in all", () => {
    let attempts = 1;
    for (let attempt = 0; nextRunAt(SVIX_RETRY_SCHEDULE, attempt, NOW) !== undefined; attempt++) attempts++;
    expect(attempts).toBe(8);
  });
});
