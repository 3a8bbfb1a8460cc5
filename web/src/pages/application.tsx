import { useState } from "preact/hooks";
import { call, enc, type AppOut, type EndpointOut, type ListOut, type MessageOut } from "../api.js";
import { ErrorText, useLoad } from "../components.js";
import { BASE, onLink } from "../router.js";

/** One application: its endpoints (a new one's signing secret shown once) and its messages. */
export function Application({ appId }: { appId: string }) {
  const base = `/api/v1/app/${enc(appId)}`;
  const app = useLoad(() => call<AppOut>("GET", base), [appId]);
  const endpoints = useLoad(() => call<ListOut<EndpointOut>>("GET", `${base}/endpoint?limit=100`), [appId]);
  const messages = useLoad(() => call<ListOut<MessageOut>>("GET", `${base}/msg?limit=50&with_content=false`), [appId]);
  const [secret, setSecret] = useState<{ endpoint: string; value: string } | undefined>(undefined);
  const [copied, setCopied] = useState(false);
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
      setCopied(false);
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
      messages.reload();
    } catch (err) {
      setMsgError(err);
    }
  };
  const copy = async () => {
    if (!secret) return;
    await navigator.clipboard.writeText(secret.value).then(
      () => setCopied(true),
      () => setCopied(false),
    );
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

      <h2>Endpoints</h2>
      {secret && (
        <section class="notice" aria-labelledby="secret-title">
          <h3 id="secret-title">Signing secret of {secret.endpoint}</h3>
          <p>This is the only time the secret is shown. Store it now.</p>
          <p>
            <code class="secret" data-testid="endpoint-secret">
              {secret.value}
            </code>
          </p>
          <button type="button" onClick={copy}>
            Copy secret
          </button>{" "}
          <span role="status">{copied ? "Copied." : ""}</span>{" "}
          <button type="button" class="secondary" onClick={() => setSecret(undefined)}>
            I have stored it
          </button>
        </section>
      )}
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
              <td>{ep.url}</td>
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
      <form onSubmit={publish}>
        <label for="event-type">Event type</label>
        <input id="event-type" name="event-type" required maxLength={256} />
        <label for="payload">Payload (JSON)</label>
        <textarea id="payload" name="payload" required>
          {"{}"}
        </textarea>
        <p>
          <button type="submit">Publish message</button>{" "}
          <button type="button" class="secondary" onClick={messages.reload}>
            Refresh messages
          </button>
        </p>
      </form>
      <ErrorText error={msgError} />
      <ErrorText error={messages.error} />
      <table>
        <caption class="visually-hidden">Messages</caption>
        <thead>
          <tr>
            <th scope="col">Message</th>
            <th scope="col">Event type</th>
            <th scope="col">Time</th>
          </tr>
        </thead>
        <tbody>
          {messages.data?.data.map((m) => (
            <tr key={m.id}>
              <td>
                <a href={`${BASE}/app/${enc(appId)}/msg/${enc(m.id)}`} onClick={onLink}>
                  {m.id}
                </a>
              </td>
              <td>{m.eventType}</td>
              <td>{m.timestamp}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
