import { isIPv4 } from "node:net";
import ipaddr from "ipaddr.js";
import { parseCidr, type Cidr } from "../net/ssrf.js";

function parse(ip: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  try {
    const a = ipaddr.parse(ip.trim());
    return a.kind() === "ipv6" && (a as ipaddr.IPv6).isIPv4MappedAddress() ? (a as ipaddr.IPv6).toIPv4Address() : a;
  } catch {
    return undefined;
  }
}

/**
 * One `X-Forwarded-For` entry as an address: some proxies (Azure Application Gateway, some
 * ingress controllers) append the client's port, `203.0.113.7:51234` or `[2001:db8::1]:443`.
 */
function hopAddress(hop: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  const h = hop.trim();
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(h);
  if (bracketed) return parse(bracketed[1]!);
  const v4WithPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(h);
  return parse(v4WithPort ? v4WithPort[1]! : h);
}

export function inRanges(ip: string, ranges: readonly Cidr[]): boolean {
  if (ranges.length === 0) return false;
  const a = parse(ip);
  return a !== undefined && ranges.some(([r, bits]) => r.kind() === a.kind() && a.match(r, bits));
}

/**
 * The caller's address. `X-Forwarded-For` is believed only when the connection comes from a
 * `--trusted-proxies` address, and then read from the right, skipping trusted hops: the first
 * address a trusted proxy did not add itself is the client (anything left of it is the client's
 * own claim and can be forged).
 */
export function clientIp(socketAddress: string, forwardedFor: string | undefined, trusted: readonly Cidr[]): string {
  // A dotted IPv4 peer (the common case) is already in the form parsing would give back: parsing
  // and printing it was 1.2% of the gateway's time per inbound request in the ingest bench.
  const direct = isIPv4(socketAddress) ? socketAddress : (parse(socketAddress)?.toString() ?? socketAddress);
  if (!forwardedFor || trusted.length === 0 || !inRanges(direct, trusted)) return direct;
  const hops = forwardedFor.split(",").map((h) => h.trim()).filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hopAddress(hops[i]!)?.toString();
    if (hop === undefined) return direct;
    if (!inRanges(hop, trusted)) return hop;
  }
  return hopAddress(hops[0] ?? "")?.toString() ?? direct;
}

export function parseCidrs(list: readonly string[]): Cidr[] {
  return list.map(parseCidr);
}
