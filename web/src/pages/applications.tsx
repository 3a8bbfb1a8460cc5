import { useState } from "preact/hooks";
import { call, enc, type AppOut, type ListOut } from "../api.js";
import { ErrorText, useLoad } from "../components.js";
import { BASE, onLink } from "../router.js";

export function Applications() {
  const { data, error, reload } = useLoad(() => call<ListOut<AppOut>>("GET", "/api/v1/app?limit=100"), []);
  const [createError, setCreateError] = useState<unknown>(undefined);
  const create = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const name = (form.elements.namedItem("app-name") as HTMLInputElement).value;
    try {
      await call("POST", "/api/v1/app", { name });
      form.reset();
      setCreateError(undefined);
      reload();
    } catch (err) {
      setCreateError(err);
    }
  };
  return (
    <>
      <h1>Applications</h1>
      <ErrorText error={error} />
      <table>
        <caption class="visually-hidden">Applications</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">ID</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {data?.data.map((a) => (
            <tr key={a.id}>
              <td>
                <a href={`${BASE}/app/${enc(a.id)}`} onClick={onLink}>
                  {a.name}
                </a>
              </td>
              <td>{a.id}</td>
              <td>{a.createdAt}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {data && data.data.length === 0 && <p>No applications yet.</p>}
      <h2>New application</h2>
      <form class="inline" onSubmit={create}>
        <div>
          <label for="app-name">Name</label>
          <input id="app-name" name="app-name" required maxLength={256} />
        </div>
        <button type="submit">Create application</button>
      </form>
      <ErrorText error={createError} />
    </>
  );
}
