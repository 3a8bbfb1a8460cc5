import { describe, expect, it } from "vitest";
import { clientIp, inRanges, parseCidrs } from "./client-ip.js";

const PROXIES = parseCidrs(["10.0.0.0/8", "fd00::/8"]);

describe("clientIp", () => {
  it("ignores X-Forwarded-For when no proxy is trusted", () => {
    expect(clientIp("198.51.100.20", "203.0.113.5", [])).toBe("198.51.100.20");
    expect(clientIp("10.0.0.2", "203.0.113.5", [])).toBe("10.0.0.2");
  });

  it("ignores a spoofed X-Forwarded-For from a peer that is not a trusted proxy", () => {
    // An attacker at 198.51.100.20 claims to be an allowlisted address.
    expect(clientIp("198.51.100.20", "10.0.0.7", PROXIES)).toBe("198.51.100.20");
    expect(clientIp("198.51.100.20", "203.0.113.5, 10.0.0.2", PROXIES)).toBe("198.51.100.20");
  });

  it("believes a trusted proxy and takes the right-most hop it did not add itself", () => {
    expect(clientIp("10.0.0.2", "203.0.113.5", PROXIES)).toBe("203.0.113.5");
    // The client sent "XFF: 192.0.2.1" itself; the proxy appended the address it saw.
    expect(clientIp("10.0.0.2", "192.0.2.1, 203.0.113.5", PROXIES)).toBe("203.0.113.5");
    // Two trusted hops (an edge proxy and an internal one) are skipped.
    expect(clientIp("10.0.0.2", "192.0.2.1, 203.0.113.5, 10.1.2.3", PROXIES)).toBe("203.0.113.5");
    expect(clientIp("fd00::2", "203.0.113.5,fd00::9", PROXIES)).toBe("203.0.113.5");
  });

  it("takes the left-most hop when every hop is a trusted address", () => {
    expect(clientIp("10.0.0.2", "10.3.3.3, 10.1.2.3", PROXIES)).toBe("10.3.3.3");
  });

  it("falls back to the peer when the hop it would believe is not an address", () => {
    expect(clientIp("10.0.0.2", "unknown", PROXIES)).toBe("10.0.0.2");
    expect(clientIp("10.0.0.2", "203.0.113.5, garbage", PROXIES)).toBe("10.0.0.2");
    // Garbage left of the believed hop is the client's own claim and never read.
    expect(clientIp("10.0.0.2", "garbage, 203.0.113.5", PROXIES)).toBe("203.0.113.5");
  });

  it("reads hops that carry the client's port (IPv4 host:port, bracketed IPv6 with or without one)", () => {
    expect(clientIp("10.0.0.2", "203.0.113.7:51234", PROXIES)).toBe("203.0.113.7");
    expect(clientIp("10.0.0.2", "[2001:db8::1]:443", PROXIES)).toBe("2001:db8::1");
    expect(clientIp("10.0.0.2", "[2001:db8::1]", PROXIES)).toBe("2001:db8::1");
    // A trusted hop with a port is still skipped; a bare IPv6 (colons, no brackets) is not a port.
    expect(clientIp("10.0.0.2", "203.0.113.7:1, 10.0.0.9:8080", PROXIES)).toBe("203.0.113.7");
    expect(clientIp("10.0.0.2", "2001:db8::2", PROXIES)).toBe("2001:db8::2");
    // Not an address with a port either: the peer is used.
    expect(clientIp("10.0.0.2", "203.0.113.7:port", PROXIES)).toBe("10.0.0.2");
  });

  it("uses the peer when there is no X-Forwarded-For", () => {
    expect(clientIp("10.0.0.2", undefined, PROXIES)).toBe("10.0.0.2");
    expect(clientIp("10.0.0.2", "", PROXIES)).toBe("10.0.0.2");
  });

  it("normalises IPv4-mapped IPv6 addresses, for the peer and for each hop", () => {
    // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
    expect(clientIp("::ffff:198.51.100.20", undefined, [])).toBe("198.51.100.20");
    expect(clientIp("::ffff:10.0.0.2", "203.0.113.5", PROXIES)).toBe("203.0.113.5");
    expect(clientIp("::ffff:198.51.100.20", "203.0.113.5", PROXIES)).toBe("198.51.100.20");
    expect(clientIp("10.0.0.2", "::ffff:203.0.113.5", PROXIES)).toBe("203.0.113.5");
    expect(clientIp("10.0.0.2", "203.0.113.5, ::ffff:10.9.9.9", PROXIES)).toBe("203.0.113.5");
  });

  it("writes IPv6 addresses in their canonical short form", () => {
    expect(clientIp("2001:0db8:0000:0000:0000:0000:0000:0001", undefined, [])).toBe("2001:db8::1");
    expect(clientIp("fd00::2", "2001:DB8:0:0:0:0:0:7", PROXIES)).toBe("2001:db8::7");
  });
});

describe("inRanges", () => {
  const ranges = parseCidrs(["203.0.113.0/24", "2001:db8::/32"]);

  it("matches IPv4, IPv6 and IPv4-mapped addresses against their ranges", () => {
    expect(inRanges("203.0.113.77", ranges)).toBe(true);
    expect(inRanges("::ffff:203.0.113.77", ranges)).toBe(true);
    expect(inRanges("2001:db8:1::5", ranges)).toBe(true);
    expect(inRanges("203.0.114.1", ranges)).toBe(false);
    expect(inRanges("2001:db9::1", ranges)).toBe(false);
    expect(inRanges("not-an-ip", ranges)).toBe(false);
    expect(inRanges("203.0.113.77", [])).toBe(false);
  });
});
