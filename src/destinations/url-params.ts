import ipaddr from "ipaddr.js";

/** Refused anywhere in a broker name: C0/C1 controls (NUL, line breaks) and DEL. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** The parts every broker URL shares, checked the same way for every kind. */
export interface BrokerAddress {
  /** Host name or IP literal, without brackets. */
  host: string;
  port: number;
}

/**
 * Host, port and the absence of credentials and fragments. Broker URLs use non-special schemes,
 * whose hosts the WHATWG parser leaves opaque (no IDNA, no `127.1` normalisation): only plain
 * DNS names and IP literals are accepted, so the SSRF check and the connection see the same host.
 */
export function brokerAddress(url: URL, defaultPort: number): BrokerAddress {
  if (url.username || url.password) {
    throw new Error("Broker URLs may not carry credentials (they would be stored in clear); name vault secrets with auth instead");
  }
  if (url.hash) throw new Error("Broker URLs may not have a #fragment");
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (!host) throw new Error("Broker URLs need a host");
  if (!ipaddr.isValid(host) && !HOST_NAME.test(host)) throw new Error("The broker host must be a DNS name or an IP address");
  const port = url.port === "" ? defaultPort : Number(url.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error("The broker port must be between 1 and 65535");
  return { host, port };
}

/**
 * The query parameters of a broker URL: each known at most once, nothing unknown (a typo such as
 * `routing_key` would otherwise silently publish elsewhere), no control characters.
 */
export function queryParams(url: URL, known: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of url.searchParams) {
    if (!known.includes(k)) throw new Error(`Unknown parameter ${JSON.stringify(k.slice(0, 64))}; known: ${known.join(", ")}`);
    if (out.has(k)) throw new Error(`Parameter ${k} is given twice`);
    out.set(k, v);
  }
  return out;
}

/** A broker-side name (exchange, queue, subject, stream, key): bounded bytes, no control characters. */
export function brokerName(what: string, value: string, maxBytes: number): string {
  if (value.length === 0) throw new Error(`${what} may not be empty`);
  if (Buffer.byteLength(value, "utf8") > maxBytes) throw new Error(`${what} is longer than ${maxBytes} bytes`);
  if (CONTROL.test(value)) throw new Error(`${what} may not contain control characters`);
  if (/\p{Cs}/u.test(value)) throw new Error(`${what} is not valid UTF-8`);
  return value;
}
