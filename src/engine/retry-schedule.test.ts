import { describe, expect, it } from "vitest";
import { SVIX_RETRY_SCHEDULE } from "../config/index.js";
import { nextRetryAt, nextRunAt, parseRetryAfter, RETRY_AFTER_CAP_MS } from "./retry-schedule.js";

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

describe("parseRetryAfter (RFC 9110 §10.2.3)", () => {
  it("reads delay-seconds and the three HTTP-date forms", () => {
    expect(parseRetryAfter("120", NOW)).toBe(120_000);
    expect(parseRetryAfter(" 0 ", NOW)).toBe(0);
    const at = NOW - (NOW % 1000) + 90_000;
    const d = new Date(at);
    expect(parseRetryAfter(d.toUTCString(), NOW)).toBe(at - NOW);
    const days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
    const mon = d.toUTCString().slice(8, 11);
    const rfc850 = `${days[d.getUTCDay()]}, ${String(d.getUTCDate()).padStart(2, "0")}-${mon}-${String(d.getUTCFullYear()).slice(2)} ${d.toISOString().slice(11, 19)} GMT`;
    expect(parseRetryAfter(rfc850, NOW)).toBe(at - NOW);
    const asctime = `${d.toUTCString().slice(0, 3)} ${mon} ${String(d.getUTCDate()).padStart(2, " ")} ${d.toISOString().slice(11, 19)} ${d.getUTCFullYear()}`;
    expect(parseRetryAfter(asctime, NOW)).toBe(at - NOW);
  });

  it("treats a date in the past as now", () => {
    expect(parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", NOW)).toBe(0);
  });

  it("ignores everything else (hostile or sloppy values)", () => {
    for (const v of [undefined, "", "-1", "1.5", "1e3", "0x10", "soon", "tomorrow", "1 day", "120s", "Infinity", "NaN", "9".repeat(13), "Wed, 21 Oct 2015 07:28:00", "Wed, 32 Oct 2015 07:28:00 GMT", "120, 130"]) {
      expect(parseRetryAfter(v, NOW), String(v)).toBeUndefined();
    }
  });
});

describe("nextRetryAt", () => {
  const fail = (statusCode: number, headers: Record<string, string> = {}) => ({ ok: false, statusCode, headers });
  const schedule = [5_000, 300_000];

  it("waits for Retry-After on 429 and 503 when it asks for longer than the schedule", () => {
    expect(nextRetryAt(schedule, 0, NOW, fail(429, { "retry-after": "120" }), fixed(0.5))).toBe(NOW + 120_000);
    expect(nextRetryAt(schedule, 0, NOW, fail(503, { "retry-after": "120" }), fixed(0.5))).toBe(NOW + 120_000);
  });

  it("never retries sooner than the schedule (max of both), and jitter never brings it before Retry-After", () => {
    expect(nextRetryAt(schedule, 1, NOW, fail(429, { "retry-after": "1" }), fixed(0.5))).toBe(NOW + 300_000);
    expect(nextRetryAt(schedule, 0, NOW, fail(429, { "retry-after": "5" }), fixed(0))).toBe(NOW + 5_000);
  });

  it("caps Retry-After at the schedule's delay plus 2 h, as Svix does", () => {
    expect(nextRetryAt(schedule, 0, NOW, fail(503, { "retry-after": "31536000" }), fixed(0.5))).toBe(NOW + 5_000 + RETRY_AFTER_CAP_MS);
  });

  it("ignores Retry-After on other statuses and when unparseable", () => {
    expect(nextRetryAt(schedule, 0, NOW, fail(500, { "retry-after": "120" }), fixed(0.5))).toBe(NOW + 5_000);
    expect(nextRetryAt(schedule, 0, NOW, fail(429, { "retry-after": "later" }), fixed(0.5))).toBe(NOW + 5_000);
  });

  it("keeps the attempt budget: no retry once the schedule is used up, whatever Retry-After says", () => {
    expect(nextRetryAt(schedule, 2, NOW, fail(429, { "retry-after": "10" }), fixed(0.5))).toBeUndefined();
  });

  it("never retries a 410 Gone or a success", () => {
    expect(nextRetryAt(schedule, 0, NOW, fail(410), fixed(0.5))).toBeUndefined();
    expect(nextRetryAt(schedule, 0, NOW, { ok: true, statusCode: 200, headers: {} }, fixed(0.5))).toBeUndefined();
  });
});
