import { randomUUID } from "node:crypto";
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DIALECTS, TEST_PG_URL } from "../helpers/dialects.js";
import { RawReceiver, send, setup, type RawResponse } from "../helpers/ingress.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const MIB = 1024 * 1024;

/**
 * Holds the server's accepts before they are durable, with real components only: on SQLite every
 * libuv thread-pool thread is parked in open(2) of a FIFO, so the WAL's fdatasync cannot run; on
 * PostgreSQL a second session locks `inbound_requests`. `waiting()` resolves once an accept is held.
 */
async function holdDurability(t: TestServer): Promise<(() => Promise<void>) & { waiting: () => Promise<void> }> {
  if (t.dialect === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "hookwarden-fifo-"));
    const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
    const fifos = Array.from({ length: threads }, (_, i) => join(dir, `f${i}`));
    for (const f of fifos) execFileSync("mkfifo", [f]);
    const parked = fifos.map((f) => open(f, "r"));
    const release = async () => {
      for (const f of fifos) closeSync(openSync(f, "w"));
      for (const h of await Promise.all(parked)) await h.close();
      rmSync(dir, { recursive: true, force: true });
    };
    // Whichever reaches the intake first, both answers wait for a flush.
    return Object.assign(release, { waiting: async () => {} });
  }
  const client = new pg.Client({ connectionString: TEST_PG_URL });
  await client.connect();
  await client.query("begin");
  await client.query(`lock table ${t.schema}.inbound_requests in exclusive mode`);
  const release = async () => {
    await client.query("commit");
    await client.end();
  };
  const waiting = () =>
    vi.waitFor(
      async () => {
        const { rows } = await client.query("select count(*)::int as n from pg_locks where relation = $1::regclass and not granted", [`${t.schema}.inbound_requests`]);
        expect(rows[0].n).toBeGreaterThan(0);
      },
      { timeout: 10_000 },
    );
  return Object.assign(release, { waiting });
}

/** What a caller can observe of a response: status, every header but `date`, and the body. */
function observable(r: RawResponse): { status: number; headers: Record<string, unknown>; body: string } {
  const { date: _date, ...headers } = r.headers;
  return { status: r.status, headers, body: r.body.toString("base64") };
}

/** Probes that a scanner could send to any input id. */
const PROBES: { name: string; method: string; suffix: string; body?: string; headers?: Record<string, string> }[] = [
  { name: "GET", method: "GET", suffix: "" },
  { name: "POST with a JSON body", method: "POST", suffix: "", body: JSON.stringify({ probe: true }), headers: { "content-type": "application/json" } },
  { name: "POST to a sub-path with a query", method: "POST", suffix: "/any/sub/path?x=1", body: "a=b", headers: { "content-type": "application/x-www-form-urlencoded" } },
  { name: "PUT without a body", method: "PUT", suffix: "" },
  { name: "HEAD", method: "HEAD", suffix: "" },
  { name: "OPTIONS", method: "OPTIONS", suffix: "" },
  { name: "DELETE to a sub-path", method: "DELETE", suffix: "/x" },
];

for (const dialect of DIALECTS) {
  describe(`inputs cannot be enumerated (${dialect})`, () => {
    let t: TestServer;
    let t404: TestServer;
    let receiver: RawReceiver;

    beforeAll(async () => {
      t = await startTestServer(dialect);
      t404 = await startTestServer(dialect, { unknownInputStatus: 404 });
      receiver = await new RawReceiver().start();
    });
    afterAll(async () => {
      await t?.stop();
      await t404?.stop();
      await receiver?.stop();
    });

    it("answers an unknown input exactly as a known one with the default response", async () => {
      const { input } = await setup(t, { outputs: [`${receiver.url}/known`] });
      const oneOff = input.id.slice(0, -1) + (input.id.endsWith("0") ? "1" : "0");
      const unknownIds = [randomUUID(), oneOff, input.id.toUpperCase(), "not-a-uuid", "12345"];
      for (const p of PROBES) {
        const opts = { method: p.method, ...(p.body !== undefined ? { body: p.body } : {}), ...(p.headers ? { headers: p.headers } : {}) };
        const known = await send(t.url, `/in/${input.id}${p.suffix}`, opts);
        expect(known.status, p.name).toBe(200);
        expect(known.body.length, p.name).toBe(0);
        for (const id of unknownIds) {
          const unknown = await send(t.url, `/in/${id}${p.suffix}`, opts);
          expect(observable(unknown), `${p.name} to ${id}`).toEqual(observable(known));
        }
      }
      // The known input really is one: its requests were forwarded.
      await t.hw.worker.runUntilIdle();
      expect(receiver.at("/known").length).toBeGreaterThanOrEqual(3);
    });

    it("answers an unknown input no sooner than a known one: not while accepts wait for storage", async () => {
      const { input } = await setup(t);
      // Warm the known input (its lookup is cached) and the store.
      expect((await send(t.url, `/in/${input.id}`, { body: "warm" })).status).toBe(200);
      const release = await holdDurability(t);
      let answered = "";
      const known = send(t.url, `/in/${input.id}`, { body: "k" }).then((r) => ((answered += "K"), r));
      await release.waiting();
      const unknown = send(t.url, `/in/${randomUUID()}`, { body: "u" }).then((r) => ((answered += "U"), r));
      // The server is otherwise responsive: two round trips, and still neither answer.
      expect((await send(t.url, "/health")).status).toBe(200);
      expect((await send(t.url, "/health")).status).toBe(200);
      expect(answered).toBe("");
      await release();
      const [k, u] = await Promise.all([known, unknown]);
      expect(observable(u)).toEqual(observable(k));
      expect(answered).toHaveLength(2);
    });

    it("answers a deleted input as an unknown one", async () => {
      const { bucket, input } = await setup(t);
      const before = await send(t.url, `/in/${input.id}`, { body: "x" });
      expect((await t.api("DELETE", `/api/v1/bucket/${bucket.id}/input/${input.id}`)).status).toBe(204);
      const after = await send(t.url, `/in/${input.id}`, { body: "x" });
      const unknown = await send(t.url, `/in/${randomUUID()}`, { body: "x" });
      expect(observable(after)).toEqual(observable(unknown));
      expect(observable(after)).toEqual(observable(before));
      expect(await t.hw.ctx.store.db.selectFrom("inbound_requests").select("id").where("input_id", "=", input.id).execute()).toHaveLength(1);
    });

    it("answers 413 to both a known and an unknown input past the 1 MiB default, and accepts exactly 1 MiB", async () => {
      const { bucket, input } = await setup(t);
      const big = Buffer.alloc(MIB + 1, 0x61);
      const known = await send(t.url, `/in/${input.id}`, { body: big, headers: { "content-type": "application/octet-stream" } });
      const unknown = await send(t.url, `/in/${randomUUID()}`, { body: big, headers: { "content-type": "application/octet-stream" } });
      const junk = await send(t.url, `/in/not-a-uuid`, { body: big, headers: { "content-type": "application/octet-stream" } });
      expect(known.status).toBe(413);
      expect(known.json).toMatchObject({ code: "E_PAYLOAD_TOO_LARGE" });
      expect(observable(unknown)).toEqual(observable(known));
      expect(observable(junk)).toEqual(observable(known));

      const fits = await send(t.url, `/in/${input.id}`, { body: big.subarray(0, MIB), headers: { "content-type": "application/octet-stream" } });
      expect(fits.status).toBe(200);
      const stored = await t.api("GET", `/api/v1/bucket/${bucket.id}/request`);
      expect(stored.body.data.map((r: any) => r.size)).toEqual([MIB]);
    });

    it("answers 404 to unknown and malformed ids with --unknown-input-status 404, while known inputs answer as configured", async () => {
      const { input } = await setup(t404);
      for (const p of PROBES) {
        const opts = { method: p.method, ...(p.body !== undefined ? { body: p.body } : {}), ...(p.headers ? { headers: p.headers } : {}) };
        expect((await send(t404.url, `/in/${input.id}${p.suffix}`, opts)).status, p.name).toBe(200);
        const unknown = await send(t404.url, `/in/${randomUUID()}${p.suffix}`, opts);
        const junk = await send(t404.url, `/in/not-a-uuid${p.suffix}`, opts);
        expect(unknown.status, p.name).toBe(404);
        expect(unknown.body.length, p.name).toBe(0);
        expect(observable(junk), p.name).toEqual(observable(unknown));
      }
    });
  });
}
