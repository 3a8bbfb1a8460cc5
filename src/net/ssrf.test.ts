import { describe, expect, it, vi } from "vitest";
import { HookwardenError } from "../errors/index.js";
import { AddressPolicy, parseCidr } from "./ssrf.js";

/** Names under `.fake.invalid` answer from this table; every other name goes to the real resolver. */
const FAKE_DNS: Record<string, { address: string; family: number }[]> = {
  "mixed.fake.invalid": [
    { address: "93.184.216.34", family: 4 },
    { address: "10.0.0.7", family: 4 },
  ],
  "mapped.fake.invalid": [{ address: "::ffff:169.254.169.254", family: 6 }],
  "public.fake.invalid": [
    { address: "2606:4700:4700::1111", family: 6 },
    { address: "1.1.1.1", family: 4 },
  ],
  "empty.fake.invalid": [],
};

vi.mock("node:dns/promises", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:dns/promises")>();
  const lookup = (host: string, opts: object) => (host in FAKE_DNS ? Promise.resolve(FAKE_DNS[host]) : real.lookup(host, opts as never));
  return { ...real, default: { ...real, lookup }, lookup };
});

const BLOCKED: [string, string][] = [
  ["IPv4 loopback", "127.0.0.1"],
  ["IPv4 loopback, far end of 127/8", "127.255.255.254"],
  ["IPv6 loopback", "::1"],
  ["RFC 1918 10/8", "10.0.0.1"],
  ["RFC 1918 10/8, last address", "10.255.255.255"],
  ["RFC 1918 172.16/12, first", "172.16.0.1"],
  ["RFC 1918 172.16/12, last", "172.31.255.255"],
  ["RFC 1918 192.168/16", "192.168.1.1"],
  ["cloud metadata (link-local)", "169.254.169.254"],
  ["link-local", "169.254.0.1"],
  ["CGNAT 100.64/10", "100.64.0.1"],
  ["Alibaba metadata in CGNAT", "100.100.100.200"],
  ["CGNAT 100.64/10, last", "100.127.255.255"],
  ["unique-local fd00::/8", "fd00::1"],
  ["unique-local fc00::/7", "fc00::1"],
  ["IPv6 link-local", "fe80::1"],
  ["IPv6 link-local with zone", "fe80::1%eth0"],
  ["IPv4-mapped loopback", "::ffff:127.0.0.1"],
  ["IPv4-mapped loopback, hex form", "::ffff:7f00:1"],
  ["IPv4-mapped metadata", "::ffff:169.254.169.254"],
  ["IPv4-mapped private", "::ffff:10.0.0.1"],
  ["unspecified IPv4 (reaches localhost on Linux)", "0.0.0.0"],
  ["0/8", "0.1.2.3"],
  ["unspecified IPv6", "::"],
  ["IPv4 multicast", "224.0.0.1"],
  ["IPv4 multicast, last", "239.255.255.255"],
  ["IPv6 multicast", "ff02::1"],
  ["broadcast", "255.255.255.255"],
  ["reserved 240/4", "240.0.0.1"],
  ["documentation 192.0.2/24", "192.0.2.1"],
  ["6to4 2002::/16 (embeds 127.0.0.1)", "2002:7f00:1::"],
  ["6to4 2002::/16", "2002::1"],
  ["Teredo 2001::/32", "2001:0:4136:e378:8000:63bf:3fff:fdd2"],
  ["NAT64 64:ff9b::/96 (embeds 10.0.0.1)", "64:ff9b::a00:1"],
  ["IPv6 documentation", "2001:db8::1"],
  ["IPv4-compatible ::/96 (embeds 127.0.0.1)", "::127.0.0.1"],
  ["IPv4-compatible ::/96 (embeds 10.0.0.1)", "::a00:1"],
];

const PUBLIC = ["1.1.1.1", "8.8.8.8", "93.184.216.34", "100.63.255.255", "100.128.0.0", "172.15.255.255", "172.32.0.0", "192.167.255.255", "169.253.255.255", "2606:4700:4700::1111", "2a00:1450:4001:81c::200e", "::ffff:1.1.1.1"];

describe("AddressPolicy.isAllowed with no allowlist", () => {
  const policy = new AddressPolicy([]);

  it.each(BLOCKED)("refuses %s (%s)", (_what, ip) => {
    expect(policy.isAllowed(ip)).toBe(false);
  });

  it.each(PUBLIC)("allows the public address %s", (ip) => {
    expect(policy.isAllowed(ip)).toBe(true);
  });

  it.each(["", "localhost", "example.com", "999.1.1.1", "1.1.1.1/32", "[::1]", "::1::2"])("refuses %j, which is not an address", (text) => {
    expect(policy.isAllowed(text)).toBe(false);
  });
});

describe("AddressPolicy.isAllowed with --allow-private-networks", () => {
  it("allows exactly the listed IPv4 range", () => {
    const policy = new AddressPolicy(["10.1.0.0/16"]);
    expect(policy.isAllowed("10.1.0.0")).toBe(true);
    expect(policy.isAllowed("10.1.200.7")).toBe(true);
    expect(policy.isAllowed("10.1.255.255")).toBe(true);
    expect(policy.isAllowed("10.0.255.255")).toBe(false);
    expect(policy.isAllowed("10.2.0.0")).toBe(false);
    expect(policy.isAllowed("192.168.0.1")).toBe(false);
    expect(policy.isAllowed("127.0.0.1")).toBe(false);
    // The mapped form of a listed address is the same host.
    expect(policy.isAllowed("::ffff:10.1.2.3")).toBe(true);
    expect(policy.isAllowed("::ffff:10.2.2.3")).toBe(false);
    expect(policy.isAllowed("1.1.1.1")).toBe(true);
  });

  it("allows a bare address as a single host", () => {
    const policy = new AddressPolicy(["169.254.169.254", "::1"]);
    expect(policy.isAllowed("169.254.169.254")).toBe(true);
    expect(policy.isAllowed("169.254.169.253")).toBe(false);
    expect(policy.isAllowed("::1")).toBe(true);
    expect(policy.isAllowed("127.0.0.1")).toBe(false);
  });

  it("allows exactly the listed IPv6 range", () => {
    const policy = new AddressPolicy(["fd12:3456::/32", "127.0.0.0/8"]);
    expect(policy.isAllowed("fd12:3456::1")).toBe(true);
    expect(policy.isAllowed("fd12:3456:ffff::1")).toBe(true);
    expect(policy.isAllowed("fd12:3457::1")).toBe(false);
    expect(policy.isAllowed("fe80::1")).toBe(false);
    expect(policy.isAllowed("127.9.9.9")).toBe(true);
    expect(policy.isAllowed("::1")).toBe(false);
  });

  it("refuses to start with an entry that is not an address or range", () => {
    expect(() => new AddressPolicy(["10.0.0.0/8", "intranet"])).toThrow(/"intranet" is not an IP address or CIDR range/);
    expect(() => new AddressPolicy(["10.0.0.0/33"])).toThrow(/not an IP address or CIDR range/);
  });
});

describe("parseCidr", () => {
  it("reads ranges and bare addresses", () => {
    expect(parseCidr("10.0.0.0/8")[1]).toBe(8);
    expect(parseCidr("10.0.0.1")[1]).toBe(32);
    expect(parseCidr("::1")[1]).toBe(128);
    expect(parseCidr("fd00::/8")[0].kind()).toBe("ipv6");
  });
});

async function resolveError(policy: AddressPolicy, host: string): Promise<HookwardenError> {
  const err = await policy.resolve(host).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HookwardenError);
  return err as HookwardenError;
}

describe("AddressPolicy.resolve", () => {
  const policy = new AddressPolicy([]);

  it.each(["127.0.0.1", "169.254.169.254", "10.0.0.1", "0.0.0.0", "::1", "[::1]", "[::ffff:127.0.0.1]", "[fe80::1]", "[fd00::1]"])(
    "refuses the IP literal %s with E_SSRF_BLOCKED (403)",
    async (host) => {
      const err = await resolveError(policy, host);
      expect(err.code).toBe("E_SSRF_BLOCKED");
      expect(err.status).toBe(403);
      expect(err.message).toContain("--allow-private-networks");
    },
  );

  it("returns an allowed IP literal as is, with its family, without a DNS lookup", async () => {
    expect(await policy.resolve("1.1.1.1")).toEqual({ address: "1.1.1.1", family: 4 });
    expect(await policy.resolve("[2606:4700:4700::1111]")).toEqual({ address: "2606:4700:4700::1111", family: 6 });
  });

  it("refuses a name that resolves to loopback with E_SSRF_BLOCKED, naming the address", async () => {
    const err = await resolveError(policy, "localhost");
    expect(err.code).toBe("E_SSRF_BLOCKED");
    expect(err.message).toMatch(/localhost \((127\.0\.0\.1|::1)\)/);
  });

  it("resolves an allow-listed name to its address", async () => {
    const allowLoopback = new AddressPolicy(["127.0.0.0/8", "::1"]);
    const { address, family } = await allowLoopback.resolve("localhost");
    expect(["127.0.0.1", "::1"]).toContain(address);
    expect(family).toBe(address.includes(":") ? 6 : 4);
  });

  it("refuses a name with one public and one private address (either could be used at connect time)", async () => {
    const err = await resolveError(policy, "mixed.fake.invalid");
    expect(err.code).toBe("E_SSRF_BLOCKED");
    expect(err.message).toContain("10.0.0.7");
  });

  it("refuses a name whose answer is an IPv4-mapped metadata address", async () => {
    expect((await resolveError(policy, "mapped.fake.invalid")).code).toBe("E_SSRF_BLOCKED");
  });

  it("returns the first answer when every address is public", async () => {
    expect(await policy.resolve("public.fake.invalid")).toEqual({ address: "2606:4700:4700::1111", family: 6 });
  });

  it("never answers with an address outside the allowlist", async () => {
    const onlyV6 = new AddressPolicy(["::1"]);
    const result = await onlyV6.resolve("localhost").then(
      (r) => r,
      (e: unknown) => e,
    );
    if (result instanceof HookwardenError) expect(result.code).toBe("E_SSRF_BLOCKED");
    else expect(result).toEqual({ address: "::1", family: 6 });
  });

  it("gives E_DNS for an empty answer", async () => {
    expect((await resolveError(policy, "empty.fake.invalid")).code).toBe("E_DNS");
  });

  it("gives E_DNS (502) for a name that cannot resolve", async () => {
    const err = await resolveError(policy, "no-such-host.hookwarden.invalid");
    expect(err.code).toBe("E_DNS");
    expect(err.status).toBe(502);
    expect(err.message).toContain("no-such-host.hookwarden.invalid");
  });
});
