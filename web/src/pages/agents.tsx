import { useEffect, useState } from "preact/hooks";
import { call, enc, type ListOut } from "../api.js";
import { ErrorText, SecretReveal, useLoad } from "../components.js";
import type { BucketOut } from "./buckets.js";

interface AgentTokenOut {
  id: string;
  name: string;
  key: string;
  mode: string;
  buckets: string[];
  createdAt: string;
  connections: { id: string; connectedAt: string; buckets: string[] }[];
  secret?: string;
}

/**
 * Agents: their tokens (the secret shown once at creation), which are connected to this node,
 * since when and for which buckets (refreshed every few seconds), and revocation, which also
 * drops their connections.
 */
export function Agents() {
  const tokens = useLoad(() => call<ListOut<AgentTokenOut>>("GET", "/api/v1/agent-token"), []);
  const buckets = useLoad(() => call<ListOut<BucketOut>>("GET", "/api/v1/bucket?limit=100"), []);
  const [secret, setSecret] = useState<{ name: string; key: string; value: string } | undefined>(undefined);
  const [status, setStatus] = useState("");
  const [error, setError] = useState<unknown>(undefined);
  useEffect(() => {
    const t = setInterval(() => document.visibilityState === "visible" && tokens.reload(), 3000);
    return () => clearInterval(t);
  }, [tokens.reload]);

  const create = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const name = (form.elements.namedItem("agent-name") as HTMLInputElement).value;
    const mode = (form.elements.namedItem("agent-mode") as HTMLSelectElement).value;
    const chosen = [...(form.elements.namedItem("agent-buckets") as HTMLSelectElement).selectedOptions].map((o) => o.value);
    try {
      const t = await call<AgentTokenOut>("POST", "/api/v1/agent-token", { name, mode, buckets: chosen });
      form.reset();
      setError(undefined);
      if (t.secret) setSecret({ name: t.name, key: t.key, value: t.secret });
      setStatus(`Agent token ${t.name} created.`);
      tokens.reload();
    } catch (err) {
      setError(err);
    }
  };
  const revoke = async (t: AgentTokenOut) => {
    try {
      await call("DELETE", `/api/v1/agent-token/${enc(t.id)}`);
      setError(undefined);
      setStatus(`Agent token ${t.name} revoked; its agents were disconnected.`);
      tokens.reload();
    } catch (err) {
      setError(err);
    }
  };

  return (
    <>
      <h1>Agents</h1>
      <p class="muted">An agent runs inside a private network and forwards a bucket's requests to internal services over one outgoing WebSocket.</p>
      {secret && <SecretReveal title={`Secret of agent token ${secret.name} (key ${secret.key})`} value={secret.value} onDone={() => setSecret(undefined)} />}
      <p role="status">{status}</p>
      <ErrorText error={error} />
      <ErrorText error={tokens.error} />
      <table>
        <caption class="visually-hidden">Agent tokens</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Key</th>
            <th scope="col">Mode</th>
            <th scope="col">Buckets</th>
            <th scope="col">Connected</th>
            <th scope="col">Secret</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {tokens.data?.data.map((t) => (
            <tr key={t.id} data-testid="agent-row">
              <td>{t.name}</td>
              <td>
                <code>{t.key}</code>
              </td>
              <td>{t.mode}</td>
              <td>{t.buckets.join(", ")}</td>
              <td data-testid="agent-connections">
                {t.connections.length === 0
                  ? "not connected"
                  : t.connections.map((c) => (
                      <div key={c.id}>
                        connected since {c.connectedAt} ({c.buckets.join(", ")})
                      </div>
                    ))}
              </td>
              <td>******</td>
              <td>
                <button type="button" class="secondary" onClick={() => void revoke(t)}>
                  Revoke {t.name}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {tokens.data && tokens.data.data.length === 0 && <p>No agent token yet.</p>}
      <h2>New agent token</h2>
      <form class="inline" onSubmit={create}>
        <div>
          <label for="agent-name">Agent name</label>
          <input id="agent-name" name="agent-name" required maxLength={256} />
        </div>
        <div>
          <label for="agent-mode">Mode</label>
          <select id="agent-mode" name="agent-mode">
            <option value="forward">forward</option>
            <option value="tunnel">tunnel</option>
          </select>
        </div>
        <div>
          <label for="agent-buckets">Buckets</label>
          <select id="agent-buckets" name="agent-buckets" multiple required>
            {buckets.data?.data.map((b) => (
              <option key={b.id} value={b.id}>
                {b.name}
              </option>
            ))}
          </select>
        </div>
        <button type="submit">Create agent token</button>
      </form>
    </>
  );
}
