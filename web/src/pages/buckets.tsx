import { useState } from "preact/hooks";
import { call, enc, type ListOut } from "../api.js";
import { ErrorText, useLoad } from "../components.js";
import { BASE, onLink } from "../router.js";

export interface BucketOut {
  id: string;
  name: string;
  auth: { type: string; username?: string };
  ephemeral: boolean;
  retentionDays: number;
  createdAt: string;
}

/** Inbound: the organisation's buckets (each groups inputs, where webhooks arrive, and outputs, where they go). */
export function Buckets() {
  const { data, error, reload } = useLoad(() => call<ListOut<BucketOut>>("GET", "/api/v1/bucket?limit=100"), []);
  const [createError, setCreateError] = useState<unknown>(undefined);
  const create = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const name = (form.elements.namedItem("bucket-name") as HTMLInputElement).value;
    try {
      await call("POST", "/api/v1/bucket", { name });
      form.reset();
      setCreateError(undefined);
      reload();
    } catch (err) {
      setCreateError(err);
    }
  };
  return (
    <>
      <h1>Inbound buckets</h1>
      <ErrorText error={error} />
      <table>
        <caption class="visually-hidden">Buckets</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">ID</th>
            <th scope="col">Authentication</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {data?.data.map((b) => (
            <tr key={b.id}>
              <td>
                <a href={`${BASE}/bucket/${enc(b.id)}`} onClick={onLink}>
                  {b.name}
                </a>
              </td>
              <td>{b.id}</td>
              <td>{b.auth.type}</td>
              <td>{b.createdAt}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {data && data.data.length === 0 && <p>No bucket yet.</p>}
      <h2>New bucket</h2>
      <form class="inline" onSubmit={create}>
        <div>
          <label for="bucket-name">Bucket name</label>
          <input id="bucket-name" name="bucket-name" required maxLength={256} />
        </div>
        <button type="submit">Create bucket</button>
      </form>
      <ErrorText error={createError} />
    </>
  );
}
