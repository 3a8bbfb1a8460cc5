import { describe, expect, it } from "vitest";
import { storableText } from "./text.js";

describe("storableText", () => {
  it("replaces every NUL with U+FFFD and keeps everything else", () => {
    expect(storableText("a\u0000b\u0000")).toBe("a\uFFFDb\uFFFD");
    expect(storableText(Buffer.from([0x89, 0x50, 0x00, 0x0a]).toString("utf8"))).toBe("\uFFFDP\uFFFD\n");
    expect(storableText("héllo ✓")).toBe("héllo ✓");
  });
});
