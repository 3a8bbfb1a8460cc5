import { useState } from "preact/hooks";
import { call, enc, type AttemptOut } from "../api.js";
import { ErrorText, useLoad } from "../components.js";

interface RequestDetail {
  id: string;
  inputId: string;
  receivedAt: string;
  size: number;
  statusCode: number;
  request: { method: string; path: string; query: string; headers: [string, string][] | Record<string, string>; body: string; bodyEncoding: "utf8" | "base64" } | null;
  attempts: AttemptOut[];
}

/**
 * Headers and query parameters that carry a sender's credentials (the bucket's token or
 * password, cookies, API keys): the API returns the request as stored, the page shows
 * `******` in their place. Signatures are not secrets and stay visible for debugging.
 */
const CREDENTIAL = /^(authorization|proxy-authorization|cookie|x-api-key)$|token|secret|password|passwd|api[-_]?key|session/i;

export function maskQuery(query: string): string {
  if (!query) return "";
  return query
    .split("&")
    .map((pair) => {
      const i = pair.indexOf("=");
      const name = i === -1 ? pair : pair.slice(0, i);
      return i !== -1 && CREDENTIAL.test(safeDecode(name)) ? `${name}=******` : pair;
    })
    .join("&");
}

/** The stored headers in arrival order: raw `[name, value]` pairs (or, from older rows, an object). */
function headerPairs(h: [string, string][] | Record<string, string>): [string, string][] {
  return Array.isArray(h) ? h.map(([k, v]) => [String(k), String(v)]) : Object.entries(h);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** One received request: as it arrived (credentials masked, body as text), its forwards, and replay. */
export function InboundRequest({ bucketId, requestId }: { bucketId: string; requestId: string }) {
  const path = `/api/v1/bucket/${enc(bucketId)}/request/${enc(requestId)}`;
  const detail = useLoad(() => call<RequestDetail>("GET", path), [bucketId, requestId]);
  const [status, setStatus] = useState("");
  const [error, setError] = useState<unknown>(undefined);
  const replay = async () => {
    try {
      const r = await call<{ queued: number }>("POST", `${path}/replay`);
      setError(undefined);
      setStatus(`Replay queued to ${r.queued} output(s).`);
      detail.reload();
    } catch (err) {
      setError(err);
    }
  };
  const d = detail.data;
  return (
    <section class="attempt" aria-labelledby="request-title" data-testid="request-detail">
      <h3 id="request-title">Request {requestId}</h3>
      <ErrorText error={detail.error} />
      {d && (
        <>
          <p>
            Received {d.receivedAt} on input {d.inputId}, {d.size} bytes, answered HTTP {d.statusCode}
          </p>
          {d.request ? (
            <>
              <h4>As received</h4>
              <pre data-testid="request-head">
                {`${d.request.method} ${d.request.path || "/"}${d.request.query ? `?${maskQuery(d.request.query)}` : ""}\n`}
                {headerPairs(d.request.headers)
                  .map(([k, v]) => `${k}: ${CREDENTIAL.test(k) ? "******" : v}`)
                  .join("\n")}
              </pre>
              <h4>Body{d.request.bodyEncoding === "base64" ? " (binary, base64)" : ""}</h4>
              <pre data-testid="request-body">{d.request.body}</pre>
            </>
          ) : (
            <p>The content of this request was not kept (ephemeral bucket or retention).</p>
          )}
          <h4>Forwards</h4>
          {d.attempts.length === 0 && <p>No forward attempt yet.</p>}
          <ul>
            {d.attempts.map((a) => (
              <li key={a.id} data-testid="forward">
                <span class={`status-${a.statusText}`}>{a.statusText}</span> · HTTP {a.responseStatusCode} · {a.url} · {a.timestamp}
                {a.errorCode ? ` · ${a.errorCode}` : ""}
              </li>
            ))}
          </ul>
        </>
      )}
      <button type="button" onClick={() => void replay()}>
        Replay request
      </button>{" "}
      <button type="button" class="secondary" onClick={detail.reload}>
        Refresh request
      </button>
      <p role="status">{status}</p>
      <ErrorText error={error} />
    </section>
  );
}
