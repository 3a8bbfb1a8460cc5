import { lookup } from "node:dns/promises";
import ipaddr from "ipaddr.js";
import { HookwardenError } from "../errors/index.js";

type Address = ipaddr.IPv4 | ipaddr.IPv6;
export type Cidr = [Address, number];

/** Parses `10.0.0.0/8`, `::1/128` or a bare address (a /32 or /128). */
export function parseCidr(text: string): Cidr {
  try {
    if (text.includes("/")) return ipaddr.parseCIDR(text);
    const addr = ipaddr.parse(text);
    return [addr, addr.kind() === "ipv4" ? 32 : 128];
  } catch {
    throw new Error(`"${text}" is not an IP address or CIDR range`);
  }
}

/** `::/96` holds the "IPv4-compatible" addresses (`::a.b.c.d`, deprecated by RFC 4291 §2.5.5.1). */
const IPV4_COMPATIBLE = ipaddr.parse("::");

function normalise(addr: Address): Address {
  return addr.kind() === "ipv6" && (addr as ipaddr.IPv6).isIPv4MappedAddress()
    ? (addr as ipaddr.IPv6).toIPv4Address()
    : addr;
}

/**
 * Decides whether Hookwarden may open a connection to an address. Only globally routable unicast
 * is allowed by default: loopback, RFC 1918 private, link-local (which holds the cloud metadata
 * service at 169.254.169.254), unique-local, CGNAT (Alibaba's 100.100.100.200 metadata lives
 * there), multicast, reserved and the IPv6 transition ranges that embed an IPv4 address (6to4,
 * Teredo, NAT64) are refused unless the operator lists them in `--allow-private-networks`.
 */
export class AddressPolicy {
  readonly #allowed: Cidr[];

  constructor(allowPrivateNetworks: readonly string[]) {
    this.#allowed = allowPrivateNetworks.map(parseCidr);
  }

  isAllowed(ip: string): boolean {
    let addr: Address;
    try {
      addr = normalise(ipaddr.parse(ip));
    } catch {
      return false;
    }
    for (const [range, bits] of this.#allowed) {
      if (range.kind() === addr.kind() && addr.match(range, bits)) return true;
    }
    // ipaddr.js calls `::127.0.0.1` plain unicast, but it embeds an IPv4 address that some stacks
    // still route as IPv4; like the other transition ranges it is refused.
    if (addr.kind() === "ipv6" && addr.match(IPV4_COMPATIBLE, 96)) return false;
    return addr.range() === "unicast";
  }

  /**
   * Resolves `hostname` and returns the address to connect to. Every resolved address must pass:
   * a name that resolves to one public and one private address is refused, because the resolver
   * used at connect time could pick either.
   */
  async resolve(hostname: string): Promise<{ address: string; family: number }> {
    const bare = hostname.startsWith("[") && hostname.endsWith("]") ? hostname.slice(1, -1) : hostname;
    if (ipaddr.isValid(bare)) {
      if (!this.isAllowed(bare)) throw blocked(bare);
      return { address: bare, family: ipaddr.parse(bare).kind() === "ipv4" ? 4 : 6 };
    }
    let results: { address: string; family: number }[];
    try {
      results = await lookup(bare, { all: true, verbatim: true });
    } catch (cause) {
      throw new HookwardenError("E_DNS", 502, `Could not resolve ${bare}`, { cause });
    }
    if (results.length === 0) throw new HookwardenError("E_DNS", 502, `Could not resolve ${bare}`);
    for (const r of results) if (!this.isAllowed(r.address)) throw blocked(`${bare} (${r.address})`);
    return results[0]!;
  }
}

function blocked(what: string): HookwardenError {
  return new HookwardenError(
    "E_SSRF_BLOCKED",
    403,
    `Refused to connect to ${what}: private, loopback, link-local and metadata addresses are blocked unless allowed with --allow-private-networks`,
  );
}
