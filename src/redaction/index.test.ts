import { describe, expect, it } from "vitest";
import { Redactor } from "./index.js";

// Characters that every encoding treats differently: space, &, =, +, /, quote, backslash, é.
const SECRET = 'p@ss w/rd+&="x"\\é';

describe("Redactor", () => {
  const r = new Redactor([SECRET]);

  it.each([
    ["raw", SECRET],
    ["percent-encoded (URL path, | url)", encodeURIComponent(SECRET)],
    ["form-encoded (query string)", new URLSearchParams({ k: SECRET }).toString().slice(2)],
    ["JSON-escaped (JSON body)", JSON.stringify(SECRET).slice(1, -1)],
    ["base64", Buffer.from(SECRET).toString("base64")],
    ["base64 without padding", Buffer.from(SECRET).toString("base64").replace(/=+$/, "")],
    ["base64url", Buffer.from(SECRET).toString("base64url")],
  ])("masks the %s form wherever it appears", (_form, encoded) => {
    expect(encoded.length).toBeGreaterThan(0);
    const text = `before ${encoded} middle ${encoded}after`;
    expect(r.redact(text)).toBe("before ****** middle ******after");
  });

  it("masks a secret inside a URL, a JSON body and a form body as a receiver would see them", () => {
    const url = new URL("https://crm.example.com/x");
    url.searchParams.set("key", SECRET);
    expect(r.redact(url.toString())).toBe("https://crm.example.com/x?key=******");
    expect(r.redact(JSON.stringify({ token: SECRET, n: 1 }))).toBe('{"token":"******","n":1}');
    expect(r.redact(`a=1&key=${encodeURIComponent(SECRET)}&b=2`)).toBe("a=1&key=******&b=2");
  });

  it("masks the longest value first, so a secret containing another is masked whole", () => {
    const outer = "abc-inner-xyz";
    const both = new Redactor(["inner", outer]);
    expect(both.redact(`1 ${outer} 2 inner 3`)).toBe("1 ****** 2 ****** 3");
    // Whichever order they were given in.
    expect(new Redactor([outer, "inner"]).redact(outer)).toBe("******");
    // And the base64 of the longer value is masked before anything inside it.
    expect(both.redact(Buffer.from(outer).toString("base64"))).toBe("******");
  });

  it("masks every secret it was given, and nothing else", () => {
    const two = new Redactor(["alpha-1", "beta-2"]);
    expect(two.redact("alpha-1 beta-2 gamma-3")).toBe("****** ****** gamma-3");
    expect(two.redact("nothing secret here")).toBe("nothing secret here");
  });

  it("still masks a value holding a lone surrogate (which JSON can carry) instead of throwing", () => {
    const odd = "tok\ud800en";
    const lone = new Redactor([odd]);
    expect(lone.redact(`a ${odd} b ${JSON.stringify(odd).slice(1, -1)}`)).toBe("a ****** b ******");
  });

  it("masks the start of a secret left at the end of a cut text, in every form it was sent in", () => {
    const cut = (s: string, keep: number) => s.slice(0, s.length - keep);
    expect(r.redactCut(`answer ${cut(SECRET, 3)}`)).toBe("answer ******");
    expect(r.redactCut(`answer ${cut(encodeURIComponent(SECRET), 5)}`)).toBe("answer ******");
    expect(r.redactCut(`answer ${cut(Buffer.from(SECRET).toString("base64"), 4)}`)).toBe("answer ******");
    // Whole secrets before the cut are masked as usual; a text that ends elsewhere is kept.
    expect(r.redactCut(`${SECRET} and ${SECRET.slice(0, 2)}`)).toBe("****** and ******");
    expect(r.redactCut("nothing secret at the end")).toBe("nothing secret at the end");
    // A needle whose prefix repeats inside it: "ababab" is no prefix of "ababac", its tail "abab" is.
    expect(new Redactor(["ababac"]).redactCut("xx ababab")).toBe("xx ab******");
    expect(new Redactor(["ababac"]).redactCut("x aba")).toBe("x ******");
  });

  it("ignores empty values instead of masking between every character", () => {
    const none = new Redactor(["", ""]);
    expect(none.empty).toBe(true);
    expect(none.redact("abc")).toBe("abc");
    expect(new Redactor(["x"]).empty).toBe(false);
  });

  it("masks credential headers (any case) whole, and secrets in other headers", () => {
    const h = r.redactHeaders({
      Authorization: "Basic dXNlcjpub3QtYS1rbm93bi1zZWNyZXQ=",
      "proxy-authorization": "Bearer something-unknown",
      "X-Api-Key": "unknown-key",
      "Api-Key": "unknown-key-2",
      Cookie: "session=unknown",
      "x-tag": `k=${SECRET}`,
      "x-plain": "visible",
    });
    expect({ ...h }).toEqual({
      Authorization: "******",
      "proxy-authorization": "******",
      "X-Api-Key": "******",
      "Api-Key": "******",
      Cookie: "******",
      "x-tag": "k=******",
      "x-plain": "visible",
    });
    // A redactor that knows no secret still hides credentials.
    expect(new Redactor([]).redactHeaders({ authorization: "Bearer t" })).toEqual({ authorization: "******" });
  });

  it("Redactor.of: the shared NONE when no value is non-empty, a masking redactor otherwise (any iterable)", () => {
    expect(Redactor.of([])).toBe(Redactor.NONE);
    expect(Redactor.of(new Set([""]))).toBe(Redactor.NONE);
    function* once() {
      yield "";
      yield SECRET;
    }
    const r = Redactor.of(once());
    expect(r).not.toBe(Redactor.NONE);
    expect(r.redact(`k=${encodeURIComponent(SECRET)}`)).toBe("k=******");
    // NONE stays empty when combined: `and` builds a new redactor instead of changing it.
    expect(Redactor.NONE.and(r).redact(SECRET)).toBe("******");
    expect(Redactor.NONE.empty).toBe(true);
    expect(Redactor.NONE.redactHeaders({ authorization: "Bearer t", x: SECRET })).toEqual({ authorization: "******", x: SECRET });
  });
});
