import { describe, expect, it } from "vitest";
import { FakeClock } from "../clock/index.js";
import { TtlCache } from "./ttl-cache.js";

/** What a lookup sees: "miss", or the cached value (undefined for a remembered miss). */
const seen = <V>(cache: TtlCache<V>, key: string) => {
  const hit = cache.get(key);
  return hit ? hit.value : "miss";
};

describe("TtlCache", () => {
  it("serves an entry until its TTL has passed on the injected clock, remembered misses included", () => {
    const clock = new FakeClock(1_000);
    const cache = new TtlCache<string | undefined>(clock, 2_000, 10);
    cache.set("a", "row");
    cache.set("gone", undefined);
    clock.advance(1_999);
    expect([seen(cache, "a"), seen(cache, "gone"), seen(cache, "never")]).toEqual(["row", undefined, "miss"]);
    clock.advance(1);
    expect([seen(cache, "a"), seen(cache, "gone")]).toEqual(["miss", "miss"]);
  });

  it("forgets one key, the keys matching a predicate, or everything", () => {
    const cache = new TtlCache<number>(new FakeClock(), 1_000, 10);
    for (const [k, v] of [["org1\0a", 1], ["org1\0b", 2], ["org2\0a", 3], ["x", 4]] as const) cache.set(k, v);
    cache.delete("x");
    expect(seen(cache, "x")).toBe("miss");
    cache.delete((k) => k.startsWith("org1\0"));
    expect([seen(cache, "org1\0a"), seen(cache, "org1\0b"), seen(cache, "org2\0a")]).toEqual(["miss", "miss", 3]);
    cache.delete();
    expect(seen(cache, "org2\0a")).toBe("miss");
  });

  it("starts over when full instead of growing past maxEntries, but refreshing a key never drops the rest", () => {
    const cache = new TtlCache<number>(new FakeClock(), 1_000, 3);
    cache.set("a", 1);
    cache.set("b", 2);
    cache.set("c", 3);
    cache.set("c", 30);
    expect([seen(cache, "a"), seen(cache, "c")]).toEqual([1, 30]);
    cache.set("d", 4);
    expect(["a", "b", "c", "d"].map((k) => seen(cache, k))).toEqual(["miss", "miss", "miss", 4]);
  });
});
