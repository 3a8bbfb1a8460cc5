import { useEffect, useState } from "preact/hooks";
import { call, enc, type AttemptOut, type ListOut, type MessageOut } from "../api.js";
import { ErrorText, json, useLoad } from "../components.js";
import { BASE, onLink } from "../router.js";

/**
 * One message: its payload and every delivery attempt, the request as sent and the answer as
 * received. All of it is rendered as text (Preact escapes it), so a payload holding markup or
 * script shows as characters and runs nothing. Attempts refresh every two seconds.
 */
export function Message({ appId, msgId }: { appId: string; msgId: string }) {
  const base = `/api/v1/app/${enc(appId)}`;
  const msg = useLoad(() => call<MessageOut>("GET", `${base}/msg/${enc(msgId)}`), [appId, msgId]);
  const attempts = useLoad(() => call<ListOut<AttemptOut>>("GET", `${base}/attempt/msg/${enc(msgId)}?limit=100`), [appId, msgId]);
  const [status, setStatus] = useState("");
  const [resendError, setResendError] = useState<unknown>(undefined);
  useEffect(() => {
    const t = setInterval(() => document.visibilityState === "visible" && attempts.reload(), 2000);
    return () => clearInterval(t);
  }, [attempts.reload]);

  const resend = async (endpointId: string) => {
    try {
      await call("POST", `${base}/msg/${enc(msgId)}/endpoint/${enc(endpointId)}/resend`);
      setResendError(undefined);
      setStatus(`Resend to ${endpointId} queued.`);
      attempts.reload();
    } catch (err) {
      setResendError(err);
    }
  };
  const list = attempts.data?.data ?? [];
  return (
    <>
      <p>
        <a href={`${BASE}/`} onClick={onLink}>
          Applications
        </a>{" "}
        /{" "}
        <a href={`${BASE}/app/${enc(appId)}`} onClick={onLink}>
          {appId}
        </a>{" "}
        / {msgId}
      </p>
      <h1>Message {msgId}</h1>
      <ErrorText error={msg.error} />
      {msg.data && (
        <>
          <p>
            Event type <strong>{msg.data.eventType}</strong>, published {msg.data.timestamp}
          </p>
          <h2>Payload</h2>
          <pre data-testid="payload">{json(msg.data.payload)}</pre>
        </>
      )}
      <h2>Attempts</h2>
      <p role="status">{status}</p>
      <ErrorText error={resendError} />
      <ErrorText error={attempts.error} />
      {attempts.data && list.length === 0 && <p>No attempt yet.</p>}
      {list.map((a) => (
        <section class="attempt" key={a.id} aria-label={`Attempt ${a.id}`} data-testid="attempt">
          <h3>
            <span class={`status-${a.statusText}`}>{a.statusText}</span> · HTTP {a.responseStatusCode} · {a.timestamp}
          </h3>
          <p>
            To {a.url} (endpoint {a.endpointId}){a.responseDurationMs !== null ? `, ${a.responseDurationMs} ms` : ""}
            {a.errorCode ? `, ${a.errorCode}` : ""}
          </p>
          {a.request !== null && (
            <>
              <h4>Request as sent</h4>
              <pre>{json(a.request)}</pre>
            </>
          )}
          <h4>Response as received</h4>
          <pre data-testid="response">{a.response}</pre>
          <button type="button" onClick={() => resend(a.endpointId)}>
            Resend to {a.endpointId}
          </button>
        </section>
      ))}
    </>
  );
}
