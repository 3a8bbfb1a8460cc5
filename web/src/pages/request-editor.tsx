import { useEffect, useRef, useState } from "preact/hooks";
import { call, type AttemptOut } from "../api.js";
import { ErrorText } from "../components.js";

type Auth =
  | { type: "basic"; username: string; passwordSecret: string }
  | { type: "bearer"; tokenSecret: string }
  | { type: "header"; name: string; valueSecret: string }
  | { type: "query"; name: string; valueSecret: string };
interface Encryption {
  cipher: string;
  keySecret: string;
  randomIv: boolean;
}
/** What the endpoint API returns of the settings the editor changes. */
export interface IntegrationOut {
  template: Record<string, unknown> | null;
  auth: Auth | null;
  encryption: Encryption | null;
}
interface Preview {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
  encrypted: boolean;
}

const AUTH_TYPES = ["none", "basic", "bearer", "header", "query"] as const;
const CIPHERS = ["none", "aes-256-gcm", "chacha20-poly1305", "aes-256-cbc", "aes-128-cbc"] as const;
/** Typing pauses this long before a preview is asked for. */
const DEBOUNCE_MS = 300;

interface Draft {
  template: string;
  authType: (typeof AUTH_TYPES)[number];
  authName: string;
  authSecret: string;
  cipher: (typeof CIPHERS)[number];
  keySecret: string;
  randomIv: boolean;
  eventType: string;
  payload: string;
}

function draftOf(i: IntegrationOut): Draft {
  const a = i.auth;
  return {
    template: i.template ? JSON.stringify(i.template, null, 2) : "",
    authType: a?.type ?? "none",
    authName: a?.type === "basic" ? a.username : a?.type === "header" || a?.type === "query" ? a.name : "",
    authSecret: a?.type === "basic" ? a.passwordSecret : a?.type === "bearer" ? a.tokenSecret : a ? a.valueSecret : "",
    cipher: (i.encryption?.cipher as Draft["cipher"] | undefined) ?? "none",
    keySecret: i.encryption?.keySecret ?? "",
    randomIv: i.encryption?.randomIv ?? true,
    eventType: "hookwarden.test",
    payload: JSON.stringify({ id: 1, name: "Ada" }, null, 2),
  };
}

/** The API body for the draft's settings, or the reason it cannot be sent yet (read in the browser, before any call). */
function settingsOf(d: Draft): { settings: IntegrationOut } | { problem: string } {
  let template: Record<string, unknown> | null = null;
  if (d.template.trim() !== "") {
    try {
      const parsed: unknown = JSON.parse(d.template);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return { problem: "The template must be a JSON object, e.g. {\"headers\": {\"X-Id\": \"{{payload.id}}\"}}" };
      template = parsed as Record<string, unknown>;
    } catch (err) {
      return { problem: `The template is not valid JSON: ${(err as Error).message}` };
    }
  }
  const auth: Auth | null =
    d.authType === "none"
      ? null
      : d.authType === "basic"
        ? { type: "basic", username: d.authName, passwordSecret: d.authSecret }
        : d.authType === "bearer"
          ? { type: "bearer", tokenSecret: d.authSecret }
          : { type: d.authType, name: d.authName, valueSecret: d.authSecret };
  const encryption = d.cipher === "none" ? null : { cipher: d.cipher, keySecret: d.keySecret, randomIv: d.randomIv };
  return { settings: { template, auth, encryption } };
}

function sample(d: Draft): { eventType: string; payload: Record<string, unknown> } | { problem: string } {
  try {
    const payload: unknown = JSON.parse(d.payload);
    if (typeof payload !== "object" || payload === null || Array.isArray(payload)) return { problem: "The sample payload must be a JSON object" };
    return { eventType: d.eventType, payload: payload as Record<string, unknown> };
  } catch (err) {
    return { problem: `The sample payload is not valid JSON: ${(err as Error).message}` };
  }
}

/**
 * The request editor: an endpoint's template, auth and body encryption, and the exact request
 * they would produce for a sample event, previewed as you type (`POST …/preview` with the unsaved
 * settings; secrets come back as ******, nothing is sent or saved). Everything the gateway
 * returns is shown as text. Save writes the settings; Send test sends a real test event with the
 * saved ones.
 */
export function RequestEditor({ base, saved, onSaved }: { base: string; saved: IntegrationOut; onSaved: () => void }) {
  const [draft, setDraft] = useState<Draft>(() => draftOf(saved));
  const [preview, setPreview] = useState<Preview | undefined>(undefined);
  const [problem, setProblem] = useState<string | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [status, setStatus] = useState("");
  const [dirty, setDirty] = useState(false);
  const seq = useRef(0);

  useEffect(() => {
    const s = settingsOf(draft);
    const ev = sample(draft);
    const n = ++seq.current;
    if ("problem" in s || "problem" in ev) {
      setProblem("problem" in s ? s.problem : (ev as { problem: string }).problem);
      return;
    }
    const timer = setTimeout(() => {
      call<Preview>("POST", `${base}/preview`, { ...ev, ...s.settings }).then(
        (p) => {
          if (n !== seq.current) return;
          setPreview(p);
          setProblem(undefined);
          setError(undefined);
        },
        (err: unknown) => {
          if (n !== seq.current) return;
          setProblem(undefined);
          setError(err);
        },
      );
    }, DEBOUNCE_MS);
    return () => clearTimeout(timer);
  }, [draft, base]);

  const set = <K extends keyof Draft>(key: K) => (e: Event) => {
    const el = e.currentTarget as HTMLInputElement;
    const value = (el.type === "checkbox" ? el.checked : el.value) as Draft[K];
    setDraft((d) => ({ ...d, [key]: value }));
    if (key !== "eventType" && key !== "payload") setDirty(true);
  };

  const save = async () => {
    const s = settingsOf(draft);
    if ("problem" in s) return setProblem(s.problem);
    try {
      await call("PATCH", base, s.settings);
      setDirty(false);
      setStatus("Request settings saved.");
      setError(undefined);
      onSaved();
    } catch (err) {
      setStatus("");
      setError(err);
    }
  };
  const sendTest = async () => {
    const ev = sample(draft);
    if ("problem" in ev) return setProblem(ev.problem);
    try {
      const a = await call<AttemptOut>("POST", `${base}/test`, ev);
      setStatus(`Test sent with the saved settings: ${a.statusText}, HTTP ${a.responseStatusCode}${a.errorCode ? ` (${a.errorCode})` : ""}.`);
      setError(undefined);
    } catch (err) {
      setStatus("");
      setError(err);
    }
  };

  const head = preview ? [`${preview.method} ${preview.url}`, ...Object.entries(preview.headers).map(([k, v]) => `${k}: ${v}`)].join("\n") : "";
  const needsName = draft.authType === "basic" || draft.authType === "header" || draft.authType === "query";
  return (
    <section aria-labelledby="editor-title">
      <h2 id="editor-title">Request editor</h2>
      <p class="muted">The preview follows your changes as you type; nothing is sent or saved until you choose to. Secrets are shown as ******.</p>
      <div class="editor">
        <div>
          <label for="tpl">Request template (JSON; empty for none)</label>
          <textarea id="tpl" rows={10} spellcheck={false} value={draft.template} onInput={set("template")} />
          <div class="inline">
            <div>
              <label for="auth-type">Auth</label>
              <select id="auth-type" value={draft.authType} onChange={set("authType")}>
                {AUTH_TYPES.map((t) => (
                  <option key={t} value={t}>
                    {t}
                  </option>
                ))}
              </select>
            </div>
            {needsName && (
              <div>
                <label for="auth-name">{draft.authType === "basic" ? "Username" : draft.authType === "header" ? "Header name" : "Parameter name"}</label>
                <input id="auth-name" value={draft.authName} onInput={set("authName")} />
              </div>
            )}
            {draft.authType !== "none" && (
              <div>
                <label for="auth-secret">Vault secret name</label>
                <input id="auth-secret" value={draft.authSecret} onInput={set("authSecret")} placeholder="CRM_TOKEN" />
              </div>
            )}
          </div>
          <div class="inline">
            <div>
              <label for="cipher">Body encryption</label>
              <select id="cipher" value={draft.cipher} onChange={set("cipher")}>
                {CIPHERS.map((c) => (
                  <option key={c} value={c}>
                    {c}
                  </option>
                ))}
              </select>
            </div>
            {draft.cipher !== "none" && (
              <>
                <div>
                  <label for="key-secret">Key: vault secret name</label>
                  <input id="key-secret" value={draft.keySecret} onInput={set("keySecret")} />
                </div>
                <label class="checkbox">
                  <input type="checkbox" checked={draft.randomIv} onChange={set("randomIv")} /> Random IV
                </label>
              </>
            )}
          </div>
          <div>
            <label for="sample-type">Sample event type</label>
            <input id="sample-type" value={draft.eventType} onInput={set("eventType")} />
          </div>
          <div>
            <label for="sample-payload">Sample payload (JSON)</label>
            <textarea id="sample-payload" rows={5} spellcheck={false} value={draft.payload} onInput={set("payload")} />
          </div>
          <p>
            <button type="button" onClick={() => void save()}>
              Save request settings
            </button>{" "}
            <button type="button" class="secondary" onClick={() => void sendTest()}>
              Send test
            </button>{" "}
            <span class="muted">{dirty ? "Unsaved changes (Send test uses the saved settings)." : ""}</span>
          </p>
          <p role="status" data-testid="editor-status">
            {status}
          </p>
        </div>
        <div aria-live="polite" data-testid="preview">
          <h3>The request it would send</h3>
          {problem && (
            <p class="error" role="alert">
              {problem}
            </p>
          )}
          <ErrorText error={error} />
          {preview && !problem && !error && (
            <>
              <pre data-testid="preview-head">{head}</pre>
              <p class="muted">{preview.encrypted ? "Body (encrypted)" : "Body"}</p>
              <pre data-testid="preview-body">{preview.body}</pre>
            </>
          )}
        </div>
      </div>
    </section>
  );
}

