import ipaddr from "ipaddr.js";
import { AddressPolicy } from "../delivery/ssrf.js";
import { HookwardenError } from "../errors/index.js";

/**
 * Only absolute http(s) URLs without credentials (they would end up in logs; put them in an
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
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw HookwardenError.invalidField(loc, "Endpoint URL schemes must be http or https");
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
