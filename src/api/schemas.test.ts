import { describe, expect, it } from "vitest";
import { iso } from "./schemas.js";

describe("iso", () => {
  it("gives each millisecond its own ISO-8601 string, the remembered one included", () => {
    expect(iso(0)).toBe("1970-01-01T00:00:00.000Z");
    expect(iso(0)).toBe("1970-01-01T00:00:00.000Z");
    expect(iso(1_764_547_200_123)).toBe("2025-12-01T00:00:00.123Z");
    expect(iso(1_764_547_200_124)).toBe("2025-12-01T00:00:00.124Z");
    expect(iso(0)).toBe("1970-01-01T00:00:00.000Z");
  });

  it("refuses a time that is not one, every time", () => {
    expect(() => iso(Number.NaN)).toThrow(RangeError);
    expect(() => iso(Number.NaN)).toThrow(RangeError);
    expect(() => iso(8.64e15 + 1)).toThrow(RangeError);
  });
});
