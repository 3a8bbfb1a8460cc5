import { ApiError, call, type ListOut } from "../api.js";
import { ErrorText, json, useLoad } from "../components.js";

export interface EventTypeOut {
  name: string;
  description: string;
  deprecated: boolean;
  schemas: Record<string, { examples?: unknown[] } | undefined> | null;
}

/**
 * The organisation's event types (a portal sees those without a feature flag), up to 250; none
 * for a token that may not read them (an application-scoped API token: 403).
 */
export function useEventTypes() {
  return useLoad(
    () =>
      call<ListOut<EventTypeOut>>("GET", "/api/v1/event-type?limit=250").catch((e: unknown) =>
        e instanceof ApiError && e.status === 403 ? { data: [], done: true, iterator: null } : Promise.reject(e),
      ),
    [],
  );
}

/**
 * The event catalogue, as Svix's portal shows it: each type with its description and its first
 * example payload, rendered as text.
 */
export function EventCatalogue() {
  const types = useEventTypes();
  const list = types.data?.data ?? [];
  return (
    <>
      <h2>Event catalogue</h2>
      <ErrorText error={types.error} />
      {types.data && list.length === 0 && <p class="muted">No event types are defined.</p>}
      {list.length > 0 && (
        <table data-testid="event-catalogue">
          <caption class="visually-hidden">Event types</caption>
          <thead>
            <tr>
              <th scope="col">Event type</th>
              <th scope="col">Description</th>
              <th scope="col">Example</th>
            </tr>
          </thead>
          <tbody>
            {list.map((t) => {
              const example = t.schemas?.["1"]?.examples?.[0];
              return (
                <tr key={t.name}>
                  <td>
                    <code>{t.name}</code>
                    {t.deprecated && <span class="muted"> (deprecated)</span>}
                  </td>
                  <td>{t.description}</td>
                  <td>
                    {example === undefined ? (
                      <span class="muted">none</span>
                    ) : (
                      <details>
                        <summary>Example of {t.name}</summary>
                        <pre>{json(example)}</pre>
                      </details>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </>
  );
}
