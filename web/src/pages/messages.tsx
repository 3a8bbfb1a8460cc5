import { useState } from "preact/hooks";
import { call, enc, type EndpointOut, type ListOut, type MessageOut } from "../api.js";
import { ErrorText, isoFromLocal, useLoad } from "../components.js";
import { BASE, onLink } from "../router.js";

/** Svix's message status codes, as the attempt API takes them. */
export const STATUSES = [
  ["0", "success"],
  ["1", "pending"],
  ["2", "fail"],
  ["3", "sending"],
] as const;

interface Filters {
  eventTypes: string;
  endpoint: string;
  status: string;
  after: string;
  before: string;
}
const NONE: Filters = { eventTypes: "", endpoint: "", status: "", after: "", before: "" };

/**
 * The URL a filter set reads from. Status is a property of a message *at an endpoint*, so a
 * status filter (like Svix's) lists one endpoint's attempted messages; the others apply to
 * the application's message list as well.
 */
function listUrl(base: string, f: Filters): string {
  const q = new URLSearchParams({ limit: "50", with_content: "false" });
  const types = f.eventTypes
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (types.length) q.set("event_types", types.join(","));
  const after = isoFromLocal(f.after);
  const before = isoFromLocal(f.before);
  if (after) q.set("after", after);
  if (before) q.set("before", before);
  if (f.status) {
    if (!f.endpoint) throw new Error("Choose an endpoint to filter by status: a message's status is per endpoint");
    q.set("status", f.status);
  }
  return f.endpoint ? `${base}/endpoint/${enc(f.endpoint)}/msg?${q}` : `${base}/msg?${q}`;
}

/** An application's messages, newest first, filtered by event type, endpoint and status, and time. */
export function MessageList({ appId, endpoints, tick }: { appId: string; endpoints: EndpointOut[]; tick: number }) {
  const base = `/api/v1/app/${enc(appId)}`;
  const [filters, setFilters] = useState<Filters>(NONE);
  const messages = useLoad(
    () => Promise.resolve().then(() => call<ListOut<MessageOut & { statusText?: string }>>("GET", listUrl(base, filters))),
    [appId, filters, tick],
  );
  const apply = (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const v = (n: string) => (form.elements.namedItem(n) as HTMLInputElement | HTMLSelectElement).value;
    setFilters({ eventTypes: v("filter-event-types"), endpoint: v("filter-endpoint"), status: v("filter-status"), after: v("filter-after"), before: v("filter-before") });
  };
  const clear = (e: Event) => {
    (e.currentTarget as HTMLButtonElement).form?.reset();
    setFilters(NONE);
  };
  const byStatus = filters.endpoint !== "";
  return (
    <>
      <form class="inline filters" onSubmit={apply} aria-label="Message filters">
        <div>
          <label for="filter-event-types">Event types</label>
          <input id="filter-event-types" name="filter-event-types" placeholder="invoice.paid, user.created" maxLength={2000} />
        </div>
        <div>
          <label for="filter-endpoint">Endpoint</label>
          <select id="filter-endpoint" name="filter-endpoint">
            <option value="">Any endpoint</option>
            {endpoints.map((ep) => (
              <option key={ep.id} value={ep.id}>
                {ep.url}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label for="filter-status">Status</label>
          <select id="filter-status" name="filter-status">
            <option value="">Any status</option>
            {STATUSES.map(([v, t]) => (
              <option key={v} value={v}>
                {t}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label for="filter-after">Published after</label>
          <input id="filter-after" name="filter-after" type="datetime-local" step={1} />
        </div>
        <div>
          <label for="filter-before">Published before</label>
          <input id="filter-before" name="filter-before" type="datetime-local" step={1} />
        </div>
        <button type="submit">Apply filters</button>
        <button type="button" class="secondary" onClick={clear}>
          Clear filters
        </button>
      </form>
      <ErrorText error={messages.error} />
      <table>
        <caption class="visually-hidden">Messages</caption>
        <thead>
          <tr>
            <th scope="col">Message</th>
            <th scope="col">Event type</th>
            {byStatus && <th scope="col">Status at the endpoint</th>}
            <th scope="col">Time</th>
          </tr>
        </thead>
        <tbody>
          {messages.data?.data.map((m) => (
            <tr key={m.id} data-testid="message-row">
              <td>
                <a href={`${BASE}/app/${enc(appId)}/msg/${enc(m.id)}`} onClick={onLink}>
                  {m.id}
                </a>
              </td>
              <td>{m.eventType}</td>
              {byStatus && <td class={`status-${m.statusText ?? ""}`}>{m.statusText ?? ""}</td>}
              <td>{m.timestamp}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {messages.data && messages.data.data.length === 0 && <p>No message matches.</p>}
    </>
  );
}
