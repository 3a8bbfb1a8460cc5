import { useState } from "preact/hooks";
import { call } from "../api.js";
import { ErrorText } from "../components.js";
import { PORTAL } from "../router.js";

/**
 * A portal link (`/portal#key=<token>`, the `url` of Svix's app-portal-access): the token is taken
 * from the fragment, which no request carries, the fragment is removed from the address and its
 * history entry at once, and the token is traded for a session like a typed one. False when the
 * address holds no key.
 */
export async function signInFromLink(): Promise<boolean> {
  const key = new URLSearchParams(location.hash.replace(/^#/, "")).get("key");
  if (!key) return false;
  history.replaceState(null, "", location.pathname + location.search);
  try {
    await call("POST", "/console/api/session", { token: key });
    return true;
  } catch {
    return false;
  }
}

/**
 * The API token is sent once to /console/api/session, which answers with an HttpOnly cookie; the
 * token is dropped from memory with the form and is never written to web storage.
 */
export function SignIn({ onSignedIn }: { onSignedIn: () => void }) {
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const input = form.elements.namedItem("token") as HTMLInputElement;
    const app = (form.elements.namedItem("app") as HTMLInputElement | null)?.value;
    setBusy(true);
    try {
      await call("POST", "/console/api/session", { token: input.value, ...(app ? { app } : {}) });
      input.value = "";
      onSignedIn();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main>
      <h1>{PORTAL ? "Sign in to your webhooks" : "Sign in to Hookwarden"}</h1>
      <form onSubmit={submit}>
        {PORTAL && (
          <>
            <label for="app">Application id or uid (optional)</label>
            <input id="app" name="app" value={new URLSearchParams(location.search).get("app") ?? ""} />
          </>
        )}
        <label for="token">{PORTAL ? "Portal token" : "Organisation API token"}</label>
        <input id="token" name="token" type="password" autocomplete="off" required />
        <p class="muted">The token is exchanged for a session that lasts one hour; it is not stored in this browser.</p>
        <button type="submit" disabled={busy}>Sign in</button>
      </form>
      <ErrorText error={error} />
    </main>
  );
}
