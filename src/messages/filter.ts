/** The fields of an endpoint that decide whether it receives a message. */
export interface EndpointFilter {
  id: string;
  filter_types: string | null;
  channels: string | null;
}

/**
 * Svix's routing: an endpoint with `filterTypes` receives only those event types; an endpoint
 * with `channels` receives only messages that carry at least one of them (a message without
 * channels reaches only endpoints without channels).
 */
export function endpointMatches(ep: EndpointFilter, eventType: string, channels: readonly string[] | null): boolean {
  if (ep.filter_types !== null && !(JSON.parse(ep.filter_types) as string[]).includes(eventType)) return false;
  if (ep.channels !== null) {
    if (!channels || channels.length === 0) return false;
    const wanted = JSON.parse(ep.channels) as string[];
    if (!channels.some((c) => wanted.includes(c))) return false;
  }
  return true;
}
