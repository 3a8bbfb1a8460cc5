import ipaddr from "ipaddr.js";
import { AddressPolicy } from "../net/ssrf.js";
import { HookwardenError } from "../errors/index.js";
import { BROKER_URLS } from "../destinations/urls.js";

/**
 * Broker URLs (`amqp:`, `nats:`, `redis:`, see destinations/urls.ts) take their kind's form;
 * otherwise only absolute http(s) URLs without credentials (they would end up in logs; put them in an
 * encrypted header instead). An IP literal that the SSRF policy refuses is reported now, at save
 * time; names are checked again on every connection, since DNS answers change.
 */
export function checkEndpointUrl(text: string, allowPrivateNetworks: readonly string[], loc: string[] = ["body", "url"]): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw HookwardenError.invalidField(loc, "Endpoint URLs must be valid absolute URLs");
  }
  const broker = BROKER_URLS.get(url.protocol);
  if (broker) return checkBrokerUrl(url, broker.parse, allowPrivateNetworks, loc);
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw HookwardenError.invalidField(loc, `Endpoint URL schemes must be http, https or a broker's (${[...BROKER_URLS.keys()].map((s) => s.slice(0, -1)).join(", ")})`);
  }
  if (url.username || url.password) {
    throw HookwardenError.invalidField(loc, "Endpoint URLs may not carry credentials; use an endpoint header (stored encrypted) instead");
  }
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (ipaddr.isValid(host) && !new AddressPolicy(allowPrivateNetworks).isAllowed(host)) {
    throw HookwardenError.invalidField(loc, `Deliveries to ${host} are blocked (private, loopback, link-local or metadata address); the operator can allow it with --allow-private-networks`, "E_SSRF_BLOCKED");
  }
  return url.toString();
}

/**
 * A broker destination's URL (`amqp:`, `nats:`, `redis:`): its kind's form, no credentials (they
 * would be stored in clear: name vault secrets with `auth`), and the same SSRF check of IP
 * literals as HTTP URLs; names are checked on every connection.
 */
function checkBrokerUrl(url: URL, parse: (url: URL) => { host: string }, allowPrivateNetworks: readonly string[], loc: string[]): string {
  let host: string;
  try {
    ({ host } = parse(url));
  } catch (err) {
    throw HookwardenError.invalidField(loc, (err as Error).message);
  }
  if (ipaddr.isValid(host) && !new AddressPolicy(allowPrivateNetworks).isAllowed(host)) {
    throw HookwardenError.invalidField(loc, `Deliveries to ${host} are blocked (private, loopback, link-local or metadata address); the operator can allow it with --allow-private-networks`, "E_SSRF_BLOCKED");
  }
  return url.toString();
}
