import { describe, expect, it } from "vitest";
import { buildForward, type ForwardTarget } from "./forward.js";
import type { OutputRow } from "./outputs.js";
import type { StoredRequest } from "./stored-request.js";

const target = (url: string, authType: "none" | "token" = "none"): ForwardTarget => ({
  output: { url, resign: 0 } as OutputRow,
  bucket: { id: "bkt_1", name: "b", auth_type: authType, ephemeral: 0 },
  signingSecret: undefined,
});
const stored = (suffix: string, query: string): StoredRequest => ({ method: "POST", suffix, query, headers: [["Content-Type", "text/plain"]], body: Buffer.from("x") });

describe("buildForward's URL", () => {
  it("is the output's URL as URL writes it when the caller sent no suffix or query, every time", () => {
    for (let i = 0; i < 2; i++) {
      const f = buildForward(target("HTTP://Example.COM:80/a b"), "req_1", stored("", ""), 1);
      expect(f.url).toBe("http://example.com/a%20b");
      expect(f.recordedUrl).toBe("http://example.com/a%20b");
    }
  });

  it("appends the suffix (dot segments clamped) and the query to the output's own, recording the output's URL alone", () => {
    const f = buildForward(target("https://hooks.example.com/base/?k=1"), "req_2", stored("/x/../../../admin", "a=%20&flag"), 1);
    expect(f.url).toBe("https://hooks.example.com/base/admin?k=1&a=%20&flag");
    expect(f.recordedUrl).toBe("https://hooks.example.com/base/?k=1");
  });

  it("drops a token bucket's own credential from the query, and adds nothing when it was all there was", () => {
    expect(buildForward(target("http://h.example/p", "token"), "req_3", stored("", "token=s3cret"), 1).url).toBe("http://h.example/p");
    expect(buildForward(target("http://h.example/p", "token"), "req_3", stored("", "token=s3cret&b=2"), 1).url).toBe("http://h.example/p?b=2");
  });

  it("keeps the body's bytes and the caller's headers, lower-cased, without hop-by-hop ones", () => {
    const s: StoredRequest = { ...stored("", ""), headers: [["Connection", "x-drop"], ["X-Drop", "1"], ["X-Keep", "a"], ["x-keep", "b"], ["__proto__", "p"]], body: Buffer.from([0, 10, 255]) };
    const f = buildForward(target("http://h.example/"), "req_4", s, 1);
    expect(f.body.equals(Buffer.from([0, 10, 255]))).toBe(true);
    expect({ ...f.headers }).toEqual({ "x-keep": "a, b", ["__proto__"]: "p", "user-agent": expect.any(String) });
  });
});
