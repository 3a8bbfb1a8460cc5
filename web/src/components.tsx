import { useCallback, useEffect, useState } from "preact/hooks";
import { ApiError } from "./api.js";

/** An API error as the operator should read it: the stable code and the server's detail. */
export function ErrorText({ error }: { error: unknown }) {
  if (!error) return null;
  const text = error instanceof ApiError ? `${error.code}: ${error.message}` : String(error);
  return (
    <p class="error" role="alert">
      {text}
    </p>
  );
}

/** Loads `fetcher()` on mount and when `deps` change; `reload` fetches again. */
export function useLoad<T>(fetcher: () => Promise<T>, deps: unknown[]): { data: T | undefined; error: unknown; reload: () => void } {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    fetcher().then(
      (d) => live && (setData(d), setError(undefined)),
      (e: unknown) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, reload };
}

/** Pretty JSON for display: always rendered as text, never as markup. */
export function json(value: unknown): string {
  if (typeof value === "string") return value;
  return JSON.stringify(value, null, 2) ?? "";
}

/**
 * A signing secret's one appearance (after create or rotate): shown with a copy button until
 * the operator dismisses it; then it is gone from the page and from memory.
 */
export function SecretReveal({ title, value, onDone }: { title: string; value: string; onDone: () => void }) {
  const [copied, setCopied] = useState(false);
  const copy = () =>
    navigator.clipboard.writeText(value).then(
      () => setCopied(true),
      () => setCopied(false),
    );
  return (
    <section class="notice" aria-labelledby="secret-title">
      <h3 id="secret-title">{title}</h3>
      <p>This is the only time the secret is shown. Store it now.</p>
      <p>
        <code class="secret" data-testid="endpoint-secret">
          {value}
        </code>
      </p>
      <button type="button" onClick={() => void copy()}>
        Copy secret
      </button>{" "}
      <span role="status">{copied ? "Copied." : ""}</span>{" "}
      <button type="button" class="secondary" onClick={onDone}>
        I have stored it
      </button>
    </section>
  );
}

/** A `datetime-local` field's value (the browser's time zone) as an ISO instant, or undefined when empty. */
export function isoFromLocal(value: string): string | undefined {
  if (!value) return undefined;
  const t = new Date(value);
  if (Number.isNaN(t.getTime())) throw new Error(`Not a date: ${value}`);
  return t.toISOString();
}
