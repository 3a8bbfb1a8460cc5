import { describe, expect, it } from "vitest";
import { FakeClock } from "../clock/index.js";
import { RateLimiter } from "./rate-limiter.js";

/** Sends as fast as the limiter allows for `ms` of fake time; returns the send times. */
function drive(limiter: RateLimiter, clock: FakeClock, key: string, perSecond: number, ms: number): number[] {
  const start = clock.now();
  const sent: number[] = [];
  // Bounded, so a limiter that says "go" without spending a token fails the test instead of hanging it.
  for (let guard = 0; clock.now() - start < ms; guard++) {
    if (guard > 100_000) throw new Error(`limiter let ${sent.length} requests through in ${clock.now() - start} ms`);
    const wait = limiter.take(key, perSecond, clock.now());
    if (wait === 0) sent.push(clock.now() - start);
    else clock.advance(wait);
  }
  return sent;
}

describe("RateLimiter", () => {
  it("lets a burst of one second's worth through at once, then asks to wait", () => {
    const limiter = new RateLimiter();
    const now = 1_000_000;
    for (let i = 0; i < 5; i++) expect(limiter.take("ep_1", 5, now)).toBe(0);
    expect(limiter.take("ep_1", 5, now)).toBe(200);
  });

  it("answers a wait after which a token really is available", () => {
    for (const perSecond of [1, 3, 7, 10, 33, 100, 999, 65535]) {
      const limiter = new RateLimiter();
      let now = 5_000;
      for (let burst = 0; limiter.take("ep", perSecond, now) === 0; burst++) expect(burst).toBeLessThan(perSecond);
      const wait = limiter.take("ep", perSecond, now);
      expect(wait).toBeGreaterThan(0);
      expect(wait).toBeLessThanOrEqual(Math.ceil(1000 / perSecond));
      now += wait;
      expect(limiter.take("ep", perSecond, now)).toBe(0);
    }
  });

  it("after a wait that was too short, asks only for the remainder", () => {
    const limiter = new RateLimiter();
    for (let i = 0; i < 2; i++) limiter.take("ep", 2, 0);
    expect(limiter.take("ep", 2, 0)).toBe(500);
    expect(limiter.take("ep", 2, 300)).toBe(200);
    expect(limiter.take("ep", 2, 500)).toBe(0);
  });

  it("paces a steady sender at the configured rate after the burst", () => {
    const limiter = new RateLimiter();
    const clock = new FakeClock(0);
    const sent = drive(limiter, clock, "ep", 10, 10_000);
    // 10 at once, then one every 100 ms.
    expect(sent.slice(0, 10)).toEqual(Array(10).fill(0));
    expect(sent.slice(10, 14)).toEqual([100, 200, 300, 400]);
    expect(sent.length).toBeGreaterThanOrEqual(10 + 99);
    expect(sent.length).toBeLessThanOrEqual(10 + 100);
    const inLastSecond = sent.filter((t) => t >= 9_000).length;
    expect(inLastSecond).toBe(10);
  });

  it("refills while idle, but never beyond one second's burst", () => {
    const limiter = new RateLimiter();
    for (let i = 0; i < 3; i++) limiter.take("ep", 3, 0);
    expect(limiter.take("ep", 3, 0)).toBeGreaterThan(0);
    const later = 3_600_000;
    for (let i = 0; i < 3; i++) expect(limiter.take("ep", 3, later)).toBe(0);
    expect(limiter.take("ep", 3, later)).toBeGreaterThan(0);
  });

  it("keeps a separate bucket per endpoint", () => {
    const limiter = new RateLimiter();
    expect(limiter.take("ep_a", 1, 0)).toBe(0);
    expect(limiter.take("ep_a", 1, 0)).toBe(1_000);
    expect(limiter.take("ep_b", 1, 0)).toBe(0);
    expect(limiter.take("ep_b", 1, 0)).toBe(1_000);
  });

  it("follows a changed rate limit from the next call", () => {
    const limiter = new RateLimiter();
    limiter.take("ep", 1, 0);
    expect(limiter.take("ep", 1, 0)).toBe(1_000);
    // The operator raises the limit: the bucket refills at the new rate.
    expect(limiter.take("ep", 100, 10)).toBe(0);
  });
});
