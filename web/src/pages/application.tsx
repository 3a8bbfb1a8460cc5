import { useState } from "preact/hooks";
import { ApiError, call, enc, type AppOut, type EndpointOut, type ListOut } from "../api.js";
import { ErrorText, SecretReveal, useLoad } from "../components.js";
import { BASE, PORTAL, onLink } from "../router.js";
import { EventCatalogue } from "./event-catalogue.js";
import { MessageList } from "./messages.js";

/** One application: its endpoints (a new one's signing secret shown once) and its messages. */
export function Application({ appId }: { appId: string }) {
  const base = `/api/v1/app/${enc(appId)}`;
  // An app-portal token may not read the application record itself (403): the portal then shows its id.
  const app = useLoad(
    () => call<AppOut>("GET", base).catch((e: unknown) => (PORTAL && e instanceof ApiError && e.status === 403 ? undefined : Promise.reject(e))),
    [appId],
  );
  const endpoints = useLoad(() => call<ListOut<EndpointOut>>("GET", `${base}/endpoint?limit=100`), [appId]);
  const [tick, setTick] = useState(0);
  const [secret, setSecret] = useState<{ endpoint: string; value: string } | undefined>(undefined);
  const [epError, setEpError] = useState<unknown>(undefined);
  const [msgError, setMsgError] = useState<unknown>(undefined);

  const createEndpoint = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const url = (form.elements.namedItem("endpoint-url") as HTMLInputElement).value;
    try {
      const ep = await call<EndpointOut>("POST", `${base}/endpoint`, { url });
      form.reset();
      setEpError(undefined);
      if (ep.secret) setSecret({ endpoint: ep.id, value: ep.secret });
      endpoints.reload();
    } catch (err) {
      setEpError(err);
    }
  };
  const publish = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const eventType = (form.elements.namedItem("event-type") as HTMLInputElement).value;
    const text = (form.elements.namedItem("payload") as HTMLTextAreaElement).value;
    try {
      let payload: unknown;
      try {
        payload = JSON.parse(text);
      } catch {
        throw new Error("The payload is not valid JSON");
      }
      await call("POST", `${base}/msg`, { eventType, payload });
      setMsgError(undefined);
      setTick((t) => t + 1);
    } catch (err) {
      setMsgError(err);
    }
  };
  return (
    <>
      <p>
        <a href={`${BASE}/`} onClick={onLink}>
          Applications
        </a>{" "}
        / {app.data?.name ?? appId}
      </p>
      <h1>{app.data ? `Application ${app.data.name}` : "Application"}</h1>
      <ErrorText error={app.error} />
      {!PORTAL && (
        <p>
          <a href={`${BASE}/app/${enc(appId)}/vault`} onClick={onLink}>
            Vault (write-only secrets)
          </a>
        </p>
      )}

      <h2>Endpoints</h2>
      {secret && <SecretReveal title={`Signing secret of ${secret.endpoint}`} value={secret.value} onDone={() => setSecret(undefined)} />}
      <ErrorText error={endpoints.error} />
      <table>
        <caption class="visually-hidden">Endpoints</caption>
        <thead>
          <tr>
            <th scope="col">URL</th>
            <th scope="col">ID</th>
            <th scope="col">State</th>
            <th scope="col">Signing secret</th>
          </tr>
        </thead>
        <tbody>
          {endpoints.data?.data.map((ep) => (
            <tr key={ep.id}>
              <td>
                <a href={`${BASE}/app/${enc(appId)}/endpoint/${enc(ep.id)}`} onClick={onLink}>
                  {ep.url}
                </a>
              </td>
              <td>{ep.id}</td>
              <td>{ep.disabled ? "disabled" : "enabled"}</td>
              <td>******</td>
            </tr>
          ))}
        </tbody>
      </table>
      <form class="inline" onSubmit={createEndpoint}>
        <div>
          <label for="endpoint-url">Endpoint URL</label>
          <input id="endpoint-url" name="endpoint-url" type="url" required />
        </div>
        <button type="submit">Add endpoint</button>
      </form>
      <ErrorText error={epError} />

      <h2>Messages</h2>
      {!PORTAL && (
      <form onSubmit={publish}>
        <label for="event-type">Event type</label>
        <input id="event-type" name="event-type" required maxLength={256} />
        <label for="payload">Payload (JSON)</label>
        <textarea id="payload" name="payload" required>
          {"{}"}
        </textarea>
        <p>
          <button type="submit">Publish message</button>{" "}
          <button type="button" class="secondary" onClick={() => setTick((t) => t + 1)}>
            Refresh messages
          </button>
        </p>
      </form>
      )}
      <ErrorText error={msgError} />
      <MessageList appId={appId} endpoints={endpoints.data?.data ?? []} tick={tick} />

      <EventCatalogue />
    </>
  );
}
