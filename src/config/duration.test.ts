import { describe, expect, it } from "vitest";
import { parseDuration, parseDurationList } from "./duration.js";

describe("parseDuration", () => {
  it.each([
    ["500ms", 500],
    ["5s", 5_000],
    ["5m", 300_000],
    ["2h", 7_200_000],
    ["1d", 86_400_000],
    ["1.5s", 1_500],
    ["0.5h", 1_800_000],
    ["0", 0],
    ["30", 30_000],
    [" 10 m ", 600_000],
  ])("reads %j as %i ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(["", "s", "5x", "-5s", "5 minutes", "1e3", "5S", "1h30m", "Infinity", "NaN", "5s,6s"])("refuses %j and quotes it", (text) => {
    expect(() => parseDuration(text)).toThrow(`"${text}" is not a duration`);
  });
});

describe("parseDurationList", () => {
  it("reads a comma-separated schedule, ignoring blanks and spaces", () => {
    expect(parseDurationList("5s,5m,30m,2h,5h,10h,10h")).toEqual([5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000]);
    expect(parseDurationList(" 1s , ,2s, ")).toEqual([1_000, 2_000]);
    expect(parseDurationList("")).toEqual([]);
  });

  it("refuses the list when one item is bad", () => {
    expect(() => parseDurationList("1s,banana,2s")).toThrow(/"banana" is not a duration/);
  });
});
