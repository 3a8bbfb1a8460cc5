import { useEffect, useMemo, useState } from "preact/hooks";
import { call, enc, type AttemptOut, type EndpointOut, type ListOut } from "../api.js";
import { TimeChart } from "../chart.js";
import { ErrorText, SecretReveal, isoFromLocal, useLoad } from "../components.js";
import { BASE, PORTAL, onLink } from "../router.js";
import { useEventTypes } from "./event-catalogue.js";
import { RequestEditor, type IntegrationOut } from "./request-editor.js";

interface Stats {
  success: number;
  pending: number;
  sending: number;
  fail: number;
}

const MINUTE = 60_000;

interface Health {
  consecutiveFailures: number;
  failingSince: string | null;
  circuitOpenUntil: string | null;
}

/** The breaker as a sentence: open (until when) or closed, and the failure streak behind it. */
export function breakerText(h: Health, now: number): string {
  const streak = h.consecutiveFailures === 0 ? "no failure streak" : `${h.consecutiveFailures} consecutive failure(s)${h.failingSince ? ` since ${new Date(h.failingSince).toLocaleString()}` : ""}`;
  const until = h.circuitOpenUntil === null ? undefined : Date.parse(h.circuitOpenUntil);
  if (until !== undefined && until > now && h.consecutiveFailures > 0) return `open until ${new Date(until).toLocaleTimeString()} (${streak}): deliveries wait, one probe then`;
  return `closed (${streak})`;
}

/** Per-minute success/failure counts and each attempt's latency, oldest first, from the latest attempts. */
export function health(attempts: AttemptOut[]) {
  const sorted = [...attempts].sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp));
  const buckets = new Map<number, [number, number]>();
  const lx: number[] = [];
  const ly: number[] = [];
  for (const a of sorted) {
    const t = Date.parse(a.timestamp);
    const minute = Math.floor(t / MINUTE) * MINUTE;
    const b = buckets.get(minute) ?? [0, 0];
    b[a.statusText === "success" ? 0 : 1]++;
    buckets.set(minute, b);
    if (a.responseDurationMs !== null) {
      lx.push(t / 1000);
      ly.push(a.responseDurationMs);
    }
  }
  const minutes = [...buckets.keys()];
  const latencies = [...ly].sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)] ?? 0;
  return {
    minutes,
    x: minutes.map((m) => m / 1000),
    ok: minutes.map((m) => buckets.get(m)![0]),
    failed: minutes.map((m) => buckets.get(m)![1]),
    latency: { x: lx, y: ly, p50: pct(50), p95: pct(95), max: latencies.at(-1) ?? 0, n: latencies.length },
  };
}

interface OperationalEventOut {
  id: string;
  type: string;
  timestamp: string;
  data: Record<string, unknown>;
}

const str = (v: unknown): string => (typeof v === "string" || typeof v === "number" ? String(v) : "");

/** One line about an operational event, rendered as text (its fields are ids, times and codes). */
export function operationalSummary(o: OperationalEventOut): string {
  const d = o.data;
  const attempt = d["lastAttempt"] as { responseStatusCode?: unknown } | undefined;
  switch (o.type) {
    case "endpoint.disabled":
      return `Disabled (${str(d["trigger"]) || "?"})${d["reason"] ? `: ${str(d["reason"])}` : ""}`;
    case "message.attempt.exhausted":
      return `Message ${str(d["msgId"])} failed for good (last answer ${str(attempt?.responseStatusCode)})`;
    case "message.attempt.failing":
      return `Message ${str(d["msgId"])} keeps failing (last answer ${str(attempt?.responseStatusCode)})`;
    case "message.attempt.recovered":
      return `Message ${str(d["msgId"])} delivered after failures`;
    case "secret.rotated":
      return `Signing secret rotated${d["graceUntil"] ? `; the old one signs until ${str(d["graceUntil"])}` : ""}`;
    case "endpoint.tls_verify_disabled":
      return "TLS certificate verification turned off";
    case "endpoint.created":
      return "Created";
    case "endpoint.updated":
      return "Updated";
    default:
      return o.type;
  }
}

/**
 * One endpoint: its state, the request editor (template, auth, encryption; live preview),
 * health at a glance (success and failure per minute and latency of
 * its latest attempts, polled; in the console its operational events), recovery of what failed since a date, and secret rotation
 * (the new secret shown once).
 */
export function Endpoint({ appId, endpointId }: { appId: string; endpointId: string }) {
  const base = `/api/v1/app/${enc(appId)}/endpoint/${enc(endpointId)}`;
  const ep = useLoad(() => call<EndpointOut & IntegrationOut & { disabledReason: string | null; health?: Health }>("GET", base), [appId, endpointId]);
  const stats = useLoad(() => call<Stats>("GET", `${base}/stats`), [appId, endpointId]);
  const types = useEventTypes();
  const attempts = useLoad(() => call<ListOut<AttemptOut>>("GET", `/api/v1/app/${enc(appId)}/attempt/endpoint/${enc(endpointId)}?limit=250`), [appId, endpointId]);
  // Organisation tokens only (the API refuses app-portal tokens): the portal never asks.
  const opEvents = useLoad(() => (PORTAL ? Promise.resolve(undefined) : call<ListOut<OperationalEventOut>>("GET", `${base}/operational-event?limit=20`)), [appId, endpointId]);
  const [secret, setSecret] = useState<string | undefined>(undefined);
  const [status, setStatus] = useState("");
  const [actionError, setActionError] = useState<unknown>(undefined);
  useEffect(() => {
    const t = setInterval(() => {
      if (document.visibilityState !== "visible") return;
      attempts.reload();
      stats.reload();
      if (!PORTAL) opEvents.reload();
    }, 2000);
    return () => clearInterval(t);
  }, [attempts.reload, stats.reload, opEvents.reload]);
  const h = useMemo(() => health(attempts.data?.data ?? []), [attempts.data]);

  const act = async (what: () => Promise<string>) => {
    try {
      setStatus(await what());
      setActionError(undefined);
    } catch (err) {
      setActionError(err);
    }
  };
  const recover = (e: Event) => {
    e.preventDefault();
    const since = (e.currentTarget as HTMLFormElement).elements.namedItem("recover-since") as HTMLInputElement;
    void act(async () => {
      const r = await call<{ data: { messagesSent: number } }>("POST", `${base}/recover`, { since: isoFromLocal(since.value) });
      stats.reload();
      return `Recovery queued: ${r.data.messagesSent} failed message(s) sent again.`;
    });
  };
  const rotate = () =>
    act(async () => {
      const r = await call<{ key?: string }>("POST", `${base}/secret/rotate`, {});
      setSecret(r.key);
      return "Signing secret rotated.";
    });
  const sendExample = (e: Event) => {
    e.preventDefault();
    const eventType = ((e.currentTarget as HTMLFormElement).elements.namedItem("example-type") as HTMLSelectElement).value;
    void act(async () => {
      const m = await call<{ id: string }>("POST", `${base}/send-example`, { eventType });
      return `Example of ${eventType} sent as ${m.id}.`;
    });
  };
  const enable = () =>
    act(async () => {
      await call("PATCH", base, { disabled: false });
      ep.reload();
      return "Endpoint enabled.";
    });

  const e = ep.data;
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
        / {endpointId}
      </p>
      <h1>Endpoint {e?.url ?? endpointId}</h1>
      <ErrorText error={ep.error} />
      {e && (
        <dl class="facts">
          <dt>ID</dt>
          <dd>{e.id}</dd>
          <dt>State</dt>
          <dd data-testid="endpoint-state">{e.disabled ? `disabled${e.disabledReason ? ` (${e.disabledReason})` : ""}` : "enabled"}</dd>
          {e.health && (
            <>
              <dt>Circuit breaker</dt>
              <dd data-testid="endpoint-breaker">{breakerText(e.health, Date.now())}</dd>
            </>
          )}
          <dt>Signing secret</dt>
          <dd>******</dd>
        </dl>
      )}
      {e?.disabled && (
        <button type="button" onClick={() => void enable()}>
          Enable endpoint
        </button>
      )}
      <p role="status">{status}</p>
      <ErrorText error={actionError} />

      {/* Templates, auth and encryption are the operator's; a portal token may not preview them. */}
      {e && !PORTAL && <RequestEditor key={e.id} base={base} saved={e} onSaved={ep.reload} />}

      <h2>Send an example</h2>
      <p class="muted">Sends an event type's example payload (or Svix's ping) to this endpoint only.</p>
      <form class="inline" onSubmit={sendExample}>
        <div>
          <label for="example-type">Event type</label>
          <select id="example-type" name="example-type">
            <option value="svix.ping">svix.ping</option>
            {(types.data?.data ?? [])
              .filter((t) => t.schemas?.["1"]?.examples?.[0] !== undefined)
              .map((t) => (
                <option key={t.name} value={t.name}>
                  {t.name}
                </option>
              ))}
          </select>
        </div>
        <button type="submit">Send example</button>
      </form>

      <h2>Health</h2>
      <ErrorText error={stats.error} />
      {stats.data && (
        <table class="narrow">
          <caption>Messages by status at this endpoint</caption>
          <thead>
            <tr>
              <th scope="col">success</th>
              <th scope="col">fail</th>
              <th scope="col">pending</th>
              <th scope="col">sending</th>
            </tr>
          </thead>
          <tbody>
            <tr data-testid="stats">
              <td>{stats.data.success}</td>
              <td>{stats.data.fail}</td>
              <td>{stats.data.pending}</td>
              <td>{stats.data.sending}</td>
            </tr>
          </tbody>
        </table>
      )}
      <ErrorText error={attempts.error} />
      {attempts.data && h.x.length === 0 && <p>No attempt yet.</p>}
      {h.x.length > 0 && (
        <>
          <TimeChart
            title="Attempts per minute"
            summary={`${h.ok.reduce((a, b) => a + b, 0)} succeeded, ${h.failed.reduce((a, b) => a + b, 0)} failed over ${h.x.length} minute(s)`}
            x={h.x}
            ys={[h.ok, h.failed]}
            series={[
              { label: "succeeded", stroke: "#0a6b2a", swatch: "swatch-ok" },
              { label: "failed", stroke: "#a4000f", swatch: "swatch-fail" },
            ]}
            unit="attempts"
          />
          <TimeChart
            title="Latency"
            summary={`median ${h.latency.p50} ms, 95th percentile ${h.latency.p95} ms, max ${h.latency.max} ms over ${h.latency.n} attempt(s)`}
            x={h.latency.x}
            ys={[h.latency.y]}
            series={[{ label: "latency (one dot per attempt)", stroke: "#0b4f8a", swatch: "swatch-latency", points: true }]}
            unit="ms"
          />
          <details>
            <summary>Attempts per minute as a table</summary>
            <table class="narrow">
              <caption class="visually-hidden">Attempts per minute</caption>
              <thead>
                <tr>
                  <th scope="col">Minute</th>
                  <th scope="col">succeeded</th>
                  <th scope="col">failed</th>
                </tr>
              </thead>
              <tbody>
                {h.minutes.map((m, i) => (
                  <tr key={m}>
                    <td>{new Date(m).toISOString()}</td>
                    <td>{h.ok[i]}</td>
                    <td>{h.failed[i]}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </details>
        </>
      )}

      {!PORTAL && (
        <>
          <h2>Operational events</h2>
          <ErrorText error={opEvents.error} />
          {opEvents.data && opEvents.data.data.length === 0 && <p>No operational event yet.</p>}
          {opEvents.data && opEvents.data.data.length > 0 && (
            <table data-testid="operational-events">
              <caption class="visually-hidden">Operational events, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Type</th>
                  <th scope="col">Time</th>
                  <th scope="col">Summary</th>
                </tr>
              </thead>
              <tbody>
                {opEvents.data.data.map((o) => (
                  <tr key={o.id}>
                    <td>{o.type}</td>
                    <td>{o.timestamp}</td>
                    <td>{operationalSummary(o)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}

      <h2>Recover failed messages</h2>
      <p class="muted">Sends again every message to this endpoint whose delivery failed for good since the date.</p>
      <form class="inline" onSubmit={recover}>
        <div>
          <label for="recover-since">Failed since</label>
          <input id="recover-since" name="recover-since" type="datetime-local" step={1} required />
        </div>
        <button type="submit">Recover failed messages</button>
      </form>

      <h2>Signing secret</h2>
      {secret && <SecretReveal title={`New signing secret of ${endpointId}`} value={secret} onDone={() => setSecret(undefined)} />}
      <p class="muted">Rotating creates a new secret, shown once; the old one keeps signing alongside for a grace period.</p>
      <button type="button" onClick={() => void rotate()}>
        Rotate signing secret
      </button>
    </>
  );
}
