import { createDecipheriv, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Keyring } from "../vault/envelope.js";
import { keptForm, openRequest, requestAad, sealRequest, sealStored, type StoredRequest } from "./stored-request.js";
import type { ReceivedRequest } from "./types.js";

const received = (over: Partial<ReceivedRequest> = {}): ReceivedRequest => ({
  method: "POST",
  publicUrl: "https://hw.example.com/in/inp_1/a?x=1",
  suffix: "/a",
  query: "x=1",
  headers: {},
  rawHeaders: [
    ["Content-Type", "application/json"],
    ["X-Signature", "v1,abc"],
  ],
  body: Buffer.from('{"id":"evt_1"}'),
  clientIp: "203.0.113.9",
  receivedAt: 1,
  ...over,
});

/** The plaintext of a sealed value, opened with node:crypto alone (not with the code under test). */
function plaintext(sealed: string, master: Buffer, aad: string): Buffer {
  const raw = Buffer.from(sealed.split(":")[2]!, "base64");
  const d = createDecipheriv("aes-256-gcm", master, raw.subarray(0, 12));
  d.setAAD(Buffer.from(aad));
  d.setAuthTag(raw.subarray(raw.length - 16));
  return Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()]);
}

describe("a stored request's sealed value", () => {
  const master = randomBytes(32);
  const ring = new Keyring(master);

  it("holds the fields as JSON, a newline, then the body's bytes as received, and opens to the same request", () => {
    const sealed = sealRequest(ring, "req_1", received());
    const plain = plaintext(sealed, master, requestAad("req_1"));
    expect(plain.toString("utf8")).toBe(`{"v":2,"method":"POST","suffix":"/a","query":"x=1","headers":[["Content-Type","application/json"],["X-Signature","v1,abc"]]}\n{"id":"evt_1"}`);
    expect(openRequest(ring, "req_1", sealed)).toEqual({ method: "POST", suffix: "/a", query: "x=1", headers: received().rawHeaders, body: Buffer.from('{"id":"evt_1"}') });
  });

  it("keeps every byte of a binary body: newlines, NUL, invalid UTF-8, and a body that is itself the first format's JSON", () => {
    const bodies = [
      Buffer.alloc(0),
      Buffer.from("\n"),
      Buffer.from("\n\n{\"v\":3}\n"),
      Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
      Buffer.from([0xff, 0xfe, 0x00, 0x0a, 0xc3]),
      Buffer.from(JSON.stringify({ method: "GET", suffix: "", query: "", headers: [], body: "aGVsbG8=" })),
      randomBytes(256 * 1024),
    ];
    for (const body of bodies) {
      const opened = openRequest(ring, "req_2", sealRequest(ring, "req_2", received({ body })));
      expect(opened.body.equals(body)).toBe(true);
      expect(opened.method).toBe("POST");
    }
  });

  it("keeps hostile header names and values as fields: a newline, `__proto__`, `constructor`, NUL", () => {
    const headers: [string, string][] = [
      ["__proto__", "{\"polluted\":true}"],
      ["constructor", "x"],
      ["x-split", "a\nb\r\nc"],
      ["x-nul", "a\u0000b"],
    ];
    const stored: StoredRequest = { method: "PUT", suffix: "/\n/x", query: "a=%0A&b=\n", headers, body: Buffer.from("body") };
    const opened = openRequest(ring, "req_3", sealStored(ring, "req_3", stored));
    expect(opened).toEqual(stored);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("never seals the in-memory-only input id and trace", () => {
    const sealed = sealStored(ring, "req_4", { ...keptForm(received()), inputId: "inp_secret", trace: "00-trace-01" });
    const plain = plaintext(sealed, master, requestAad("req_4")).toString("latin1");
    expect(plain).not.toContain("inp_secret");
    expect(plain).not.toContain("00-trace-01");
  });

  it("still opens a value of the first format (JSON, the body in base64), as releases before stop 28 wrote it", () => {
    const body = Buffer.from([0x7b, 0x0a, 0x00, 0xff, 0x7d]);
    const first = ring.seal(JSON.stringify({ method: "POST", suffix: "/s", query: "q=1", headers: [["X-A", "1"]], body: body.toString("base64") }), requestAad("req_5"));
    const opened = openRequest(ring, "req_5", first);
    expect(opened).toEqual({ method: "POST", suffix: "/s", query: "q=1", headers: [["X-A", "1"]], body });
    // Master-key rotation re-seals the bytes as they are: the first format stays readable.
    const rotated = new Keyring(randomBytes(32), [master]);
    const resealed = rotated.seal(rotated.open(first, requestAad("req_5")), requestAad("req_5"));
    expect(openRequest(rotated, "req_5", resealed)).toEqual(opened);
  });

  it("is bound to its row: another request's id does not open it", () => {
    const sealed = sealRequest(ring, "req_6", received());
    expect(() => openRequest(ring, "req_7", sealed)).toThrow(/failed authentication/);
  });

  it("is smaller than the first format for a 1 KiB JSON body", () => {
    const body = Buffer.from(JSON.stringify({ note: "x".repeat(1000) }));
    const now = sealRequest(ring, "req_8", received({ body }));
    const first = ring.seal(JSON.stringify({ method: "POST", suffix: "/a", query: "x=1", headers: received().rawHeaders, body: body.toString("base64") }), requestAad("req_8"));
    expect(now.length).toBeLessThan(first.length * 0.8);
  });
});
