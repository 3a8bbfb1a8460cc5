import { useEffect, useState } from "preact/hooks";
import { call, enc, type ListOut } from "../api.js";
import { ErrorText, useLoad } from "../components.js";
import { BASE, onLink } from "../router.js";
import type { BucketOut } from "./buckets.js";
import { InboundRequest } from "./inbound-request.js";

interface InputOut {
  id: string;
  name: string;
  url: string;
  verification: { type?: string };
  createdAt: string;
}
interface OutputOut {
  id: string;
  name: string;
  type: string;
  url: string | null;
  disabled: boolean;
}
/** One row of the live tail (`GET …/request/stream`, Server-Sent Events). */
interface TailRow {
  id: string;
  inputId: string;
  receivedAt: string;
  size: number;
  statusCode: number | null;
  status: "accepted" | "rejected";
  method: string | null;
  rejectionCode: string | null;
  rejectionReason: string | null;
  verification: string;
  forward: { state: "pending" | "delivered" | "failed" | "none"; statusCode: number | null; errorCode: string | null; attempts: number } | null;
}

const PROVIDERS = ["none", "stripe", "github", "shopify", "slack", "twilio", "standard-webhooks"] as const;
/** Rows the tail keeps on screen (older ones: the requests API pages through them). */
const TAIL_ROWS = 50;

function forwardText(f: TailRow["forward"]): string {
  if (!f) return "not forwarded";
  if (f.state === "none") return "no output";
  const last = f.statusCode ? `HTTP ${f.statusCode}` : (f.errorCode ?? "");
  return [f.state, last, f.attempts > 1 ? `${f.attempts} attempts` : ""].filter(Boolean).join(", ");
}

/**
 * The bucket's arrivals pushed by the server (EventSource on the same origin: the session cookie
 * goes with it, and the CSP's `connect-src 'self'` allows it). Rows come as JSON and are shown
 * as text. The browser reconnects by itself after a drop (the stream's `retry: 3000`).
 */
function useTail(url: string, live: boolean): { rows: TailRow[]; state: "connecting" | "open" | "closed" | "off"; opened: boolean } {
  const [rows, setRows] = useState<TailRow[]>([]);
  const [state, setState] = useState<"connecting" | "open" | "closed" | "off">("connecting");
  const [opened, setOpened] = useState(false);
  useEffect(() => {
    if (!live) {
      setState("off");
      return;
    }
    setState("connecting");
    const source = new EventSource(url);
    source.onopen = () => {
      setState("open");
      setOpened(true);
    };
    source.onerror = () => setState(source.readyState === EventSource.CLOSED ? "closed" : "connecting");
    source.addEventListener("request", (e) => {
      let row: TailRow;
      try {
        row = JSON.parse((e as MessageEvent<string>).data) as TailRow;
      } catch {
        return;
      }
      setRows((old) => [row, ...old.filter((r) => r.id !== row.id)].sort((a, b) => (a.receivedAt < b.receivedAt ? 1 : a.receivedAt > b.receivedAt ? -1 : a.id < b.id ? 1 : -1)).slice(0, TAIL_ROWS));
    });
    return () => source.close();
  }, [url, live]);
  return { rows, state, opened };
}

/**
 * One bucket: its inputs (a URL to copy, the provider whose signature it checks; the secret is
 * typed once and never shown), its outputs, and a live tail of received requests with replay.
 */
export function Bucket({ bucketId }: { bucketId: string }) {
  const base = `/api/v1/bucket/${enc(bucketId)}`;
  const bucket = useLoad(() => call<BucketOut>("GET", base), [bucketId]);
  const inputs = useLoad(() => call<ListOut<InputOut>>("GET", `${base}/input?limit=100`), [bucketId]);
  const outputs = useLoad(() => call<ListOut<OutputOut>>("GET", `${base}/output?limit=100`), [bucketId]);
  const [live, setLive] = useState(true);
  const tail = useTail(`${base}/request/stream`, live);
  const [selected, setSelected] = useState<string | undefined>(undefined);
  const [status, setStatus] = useState("");
  const [error, setError] = useState<unknown>(undefined);

  const submit = (fn: (form: HTMLFormElement) => Promise<string>) => async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    try {
      setStatus(await fn(form));
      form.reset();
      setError(undefined);
    } catch (err) {
      setError(err);
    }
  };
  const field = (form: HTMLFormElement, name: string) => (form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement).value;
  const addInput = submit(async (form) => {
    const type = field(form, "input-provider");
    const secretInput = form.elements.namedItem("input-secret") as HTMLInputElement;
    const secret = secretInput.value;
    secretInput.value = "";
    const verification = type === "none" ? { type } : { type, secret };
    const created = await call<InputOut>("POST", `${base}/input`, { name: field(form, "input-name"), verification });
    inputs.reload();
    return `Input ${created.name} created.`;
  });
  const addOutput = submit(async (form) => {
    const created = await call<OutputOut>("POST", `${base}/output`, { name: field(form, "output-name"), url: field(form, "output-url") });
    outputs.reload();
    return `Output ${created.name || created.id} created.`;
  });
  const copy = (url: string) =>
    navigator.clipboard.writeText(url).then(
      () => setStatus("Input URL copied."),
      () => setStatus("Copy failed: select the URL and copy it by hand."),
    );

  return (
    <>
      <p>
        <a href={`${BASE}/buckets`} onClick={onLink}>
          Inbound
        </a>{" "}
        / {bucket.data?.name ?? bucketId}
      </p>
      <h1>Bucket {bucket.data?.name ?? bucketId}</h1>
      <ErrorText error={bucket.error} />
      <p role="status">{status}</p>
      <ErrorText error={error} />

      <h2>Inputs</h2>
      <ErrorText error={inputs.error} />
      <table>
        <caption class="visually-hidden">Inputs</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">URL to give the sender</th>
            <th scope="col">Verification</th>
            <th scope="col">Secret</th>
          </tr>
        </thead>
        <tbody>
          {inputs.data?.data.map((i) => (
            <tr key={i.id} data-testid="input-row">
              <td>{i.name}</td>
              <td>
                <code>{i.url}</code>{" "}
                <button type="button" class="secondary" onClick={() => void copy(i.url)}>
                  Copy URL of {i.name}
                </button>
              </td>
              <td>{i.verification.type ?? "none"}</td>
              <td>{i.verification.type && i.verification.type !== "none" ? "******" : ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <form class="inline" onSubmit={addInput} aria-label="New input">
        <div>
          <label for="input-name">Input name</label>
          <input id="input-name" name="input-name" required maxLength={256} />
        </div>
        <div>
          <label for="input-provider">Verify signatures of</label>
          <select id="input-provider" name="input-provider">
            {PROVIDERS.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label for="input-secret">Provider signing secret</label>
          <input id="input-secret" name="input-secret" type="password" autocomplete="new-password" />
        </div>
        <button type="submit">Add input</button>
      </form>

      <h2>Outputs</h2>
      <ErrorText error={outputs.error} />
      <table>
        <caption class="visually-hidden">Outputs</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Destination</th>
            <th scope="col">State</th>
          </tr>
        </thead>
        <tbody>
          {outputs.data?.data.map((o) => (
            <tr key={o.id}>
              <td>{o.name || o.id}</td>
              <td>{o.type === "agent" ? "an agent" : o.url}</td>
              <td>{o.disabled ? "disabled" : "enabled"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <form class="inline" onSubmit={addOutput} aria-label="New output">
        <div>
          <label for="output-name">Output name</label>
          <input id="output-name" name="output-name" maxLength={256} />
        </div>
        <div>
          <label for="output-url">Forward to URL</label>
          <input id="output-url" name="output-url" type="url" required />
        </div>
        <button type="submit">Add output</button>
      </form>

      <h2>Received requests</h2>
      <p>
        <label class="checkbox">
          <input type="checkbox" checked={live} onChange={(e) => setLive((e.currentTarget as HTMLInputElement).checked)} /> Live tail (pushed by the server as requests arrive)
        </label>{" "}
        <span data-testid="tail-state">{tail.state === "open" ? "connected" : tail.state === "off" ? "paused" : tail.state === "closed" ? "disconnected: reload the page" : "connecting…"}</span>
      </p>
      <table aria-live={live ? "polite" : "off"}>
        <caption class="visually-hidden">Received and rejected requests, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Request</th>
            <th scope="col">Input</th>
            <th scope="col">Verification</th>
            <th scope="col">Answer</th>
            <th scope="col">Forward</th>
            <th scope="col">Size</th>
            <th scope="col">Received</th>
          </tr>
        </thead>
        <tbody>
          {tail.rows.map((r) =>
            r.status === "accepted" ? (
              <tr key={r.id} data-testid="request-row">
                <td>
                  <button type="button" class="link" aria-pressed={selected === r.id} onClick={() => setSelected(r.id)}>
                    {r.id}
                  </button>
                </td>
                <td>{inputs.data?.data.find((i) => i.id === r.inputId)?.name ?? r.inputId}</td>
                <td>{r.verification}</td>
                <td>{r.statusCode ? `HTTP ${r.statusCode}` : "waiting"}</td>
                <td data-testid="tail-forward">{forwardText(r.forward)}</td>
                <td>{r.size} B</td>
                <td>{r.receivedAt}</td>
              </tr>
            ) : (
              <tr key={r.id} data-testid="rejected-row" class="rejected">
                <td>
                  rejected {r.method ?? ""} <span class="visually-hidden">{r.id}</span>
                </td>
                <td>{inputs.data?.data.find((i) => i.id === r.inputId)?.name ?? r.inputId}</td>
                <td data-testid="rejection">
                  {r.rejectionCode}
                  {r.rejectionReason ? `: ${r.rejectionReason}` : ""}
                </td>
                <td>HTTP {r.statusCode}</td>
                <td>not forwarded</td>
                <td>not kept</td>
                <td>{r.receivedAt}</td>
              </tr>
            ),
          )}
        </tbody>
      </table>
      {tail.opened && tail.rows.length === 0 && <p>No request received yet.</p>}
      {selected && <InboundRequest key={selected} bucketId={bucketId} requestId={selected} />}
    </>
  );
}
