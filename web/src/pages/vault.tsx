import { useState } from "preact/hooks";
import { call, enc, type ListOut } from "../api.js";
import { ErrorText, useLoad } from "../components.js";
import { BASE, onLink } from "../router.js";

interface SecretMeta {
  name: string;
  createdAt: string;
  updatedAt: string;
}

/**
 * The application's vault: write-only values that templates and auth refer to by name. A
 * value typed here goes out in one request and the field is cleared at once; the API never
 * answers with a value, so the page can only ever list names and times.
 */
export function Vault({ appId }: { appId: string }) {
  const base = `/api/v1/app/${enc(appId)}/secret`;
  const list = useLoad(() => call<ListOut<SecretMeta>>("GET", base), [appId]);
  const [status, setStatus] = useState("");
  const [error, setError] = useState<unknown>(undefined);

  const store = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const name = (form.elements.namedItem("vault-name") as HTMLInputElement).value;
    const valueInput = form.elements.namedItem("vault-value") as HTMLInputElement;
    const value = valueInput.value;
    // The value leaves the page's state now, whatever the answer.
    valueInput.value = "";
    const exists = list.data?.data.some((s) => s.name === name) ?? false;
    try {
      if (exists) await call("PUT", `${base}/${enc(name)}`, { value });
      else await call("POST", base, { name, value });
      form.reset();
      setError(undefined);
      setStatus(exists ? `Value of ${name} replaced.` : `${name} stored.`);
      list.reload();
    } catch (err) {
      setError(err);
    }
  };
  const remove = async (name: string) => {
    try {
      await call("DELETE", `${base}/${enc(name)}`);
      setError(undefined);
      setStatus(`${name} deleted.`);
      list.reload();
    } catch (err) {
      setError(err);
    }
  };

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
        / vault
      </p>
      <h1>Vault</h1>
      <p class="muted">Values are write-only: once stored they are never shown again, here or through the API. Templates and auth refer to them by name.</p>
      <ErrorText error={list.error} />
      <table>
        <caption class="visually-hidden">Stored secrets</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Value</th>
            <th scope="col">Created</th>
            <th scope="col">Updated</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {list.data?.data.map((s) => (
            <tr key={s.name} data-testid="vault-row">
              <td>{s.name}</td>
              <td>******</td>
              <td>{s.createdAt}</td>
              <td>{s.updatedAt}</td>
              <td>
                <button type="button" class="secondary" onClick={() => void remove(s.name)}>
                  Delete {s.name}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.data && list.data.data.length === 0 && <p>The vault is empty.</p>}
      <h2>Store a value</h2>
      <p class="muted">Storing under an existing name replaces its value.</p>
      <form class="inline" onSubmit={store}>
        <div>
          <label for="vault-name">Name</label>
          <input id="vault-name" name="vault-name" required maxLength={64} autocomplete="off" aria-describedby="vault-name-hint" />
          <span id="vault-name-hint" class="muted">A-Z, 0-9 and _, starting with a letter</span>
        </div>
        <div>
          <label for="vault-value">Value</label>
          <input id="vault-value" name="vault-value" type="password" required autocomplete="new-password" />
        </div>
        <button type="submit">Store value</button>
      </form>
      <p role="status">{status}</p>
      <ErrorText error={error} />
    </>
  );
}
