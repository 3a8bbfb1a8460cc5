import { createDecipheriv, randomUUID } from "node:crypto";
import { sign as githubSign } from "@octokit/webhooks-methods";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { DIALECTS } from "../helpers/dialects.js";
import { canary, databaseText, getRequest, listRequests, metric, RawReceiver, send, setup, storedForms } from "../helpers/ingress.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const DAY = 24 * 3_600_000;
const GITHUB_SECRET = "It's a Secret to Everybody";

/** A request whose every part carries its own canary. */
function tracedRequest() {
  const c = { body: canary("body"), header: canary("header"), query: canary("query"), path: canary("path"), answer: canary("answer") };
  return {
    c,
    path: `/sub/${c.path}?q=${c.query}&n=1`,
    body: JSON.stringify({ secret: c.body }),
    headers: { "content-type": "application/json", "x-trace": c.header },
  };
}

/** Opens a `hw1:<kid>:<base64(nonce | ciphertext | tag)>` value with AES-256-GCM and the raw master key. */
function openAesGcm(sealed: string, masterKeyBase64: string, aad: string): Buffer {
  const [prefix, , b64] = sealed.split(":");
  expect(prefix).toBe("hw1");
  const raw = Buffer.from(b64!, "base64");
  const decipher = createDecipheriv("aes-256-gcm", Buffer.from(masterKeyBase64, "base64"), raw.subarray(0, 12));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(raw.subarray(raw.length - 16));
  return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]);
}

/** Fails when any form of any value appears in what the database holds. */
async function expectAbsent(t: TestServer, values: string[]): Promise<void> {
  const text = await databaseText(t);
  for (const v of values) for (const form of storedForms(v)) expect(text.includes(form), `"${form}" (from ${v}) is in the database`).toBe(false);
}

for (const dialect of DIALECTS) {
  describe(`stored requests: sealed, ephemeral, deduplicated (${dialect})`, () => {
    let t: TestServer;
    let receiver: RawReceiver;
    let clock: FakeClock;
    let otherOrg: string;

    beforeAll(async () => {
      clock = new FakeClock(Date.now());
      t = await startTestServer(dialect, {}, { clock });
      receiver = await new RawReceiver().start();
      otherOrg = await t.newOrgToken("other");
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    it("stores an accepted request sealed before answering 2xx, and shows it decrypted only to its organisation", async () => {
      const { bucket, input } = await setup(t, { outputs: [`${receiver.url}/sealed`] });
      const r = tracedRequest();
      receiver.respond = () => ({ body: r.c.answer });
      const res = await send(t.url, `/in/${input.id}${r.path}`, { body: r.body, headers: r.headers });
      expect(res.status).toBe(200);
      const rows = await t.hw.ctx.store.db.selectFrom("inbound_requests").selectAll().where("input_id", "=", input.id).execute();
      expect(rows).toHaveLength(1);
      expect(rows[0]!.data_enc).toEqual(expect.any(String));
      expect(rows[0]!.size).toBe(Buffer.byteLength(r.body));
      // AES-256-GCM under the master key, bound to the row: opened here with node:crypto alone.
      // The plaintext is the request's fields as JSON, a newline, and the body's bytes as received.
      const opened = openAesGcm(rows[0]!.data_enc!, t.hw.ctx.config.masterKey!.reveal(), `inbound-request:${rows[0]!.id}`);
      const end = opened.indexOf("\n");
      expect(JSON.parse(opened.subarray(0, end).toString("utf8"))).toMatchObject({ v: 2, method: "POST" });
      expect(opened.subarray(end + 1).toString()).toBe(r.body);
      expect(() => openAesGcm(rows[0]!.data_enc!, t.hw.ctx.config.masterKey!.reveal(), "inbound-request:req_other")).toThrow();

      await t.hw.worker.runUntilIdle();
      expect(receiver.at(`/sealed/sub/${r.c.path}`)).toHaveLength(1);
      await expectAbsent(t, [r.c.body, r.c.header, r.c.query, r.c.path, r.body]);

      // Durable: a restarted server still reads it.
      await t.restart();
      const shown = await getRequest(t, bucket.id, rows[0]!.id);
      expect(shown).toMatchObject({ id: rows[0]!.id, inputId: input.id, size: Buffer.byteLength(r.body), statusCode: 200 });
      expect(shown.request).toMatchObject({ method: "POST", path: `/sub/${r.c.path}`, query: `q=${r.c.query}&n=1`, body: r.body, bodyEncoding: "utf8" });
      expect(shown.request.headers).toContainEqual(["x-trace", r.c.header]);
      expect(shown.attempts).toHaveLength(1);

      const asOther = (method: string, path: string) => t.api(method, path, undefined, { authorization: `Bearer ${otherOrg}` });
      for (const [method, path] of [
        ["GET", `/api/v1/bucket/${bucket.id}/request/${rows[0]!.id}`],
        ["GET", `/api/v1/bucket/${bucket.id}/request`],
        ["POST", `/api/v1/bucket/${bucket.id}/request/${rows[0]!.id}/replay`],
      ] as const) {
        const denied = await asOther(method, path);
        expect(denied.status, `${method} ${path}`).toBe(404);
        expect(denied.text).not.toContain(r.c.body);
      }
    });

    it("stores requests of 5 KB and 20 KB sealed and shows them byte for byte; on PostgreSQL never compressed, in the table up to 8 KB", async () => {
      const { bucket, input } = await setup(t, { outputs: [`${receiver.url}/sizes`] });
      const db = t.hw.ctx.store.db;
      // Ciphertext does not compress: PostgreSQL's pglz pass over it was wasted work (0019).
      const toastRows = async (): Promise<number> => {
        const { rows } = await sql<{ toast: string }>`select reltoastrelid::regclass::text as toast from pg_class where oid = 'inbound_requests'::regclass`.execute(db);
        const counted = await sql<{ n: string }>`select count(*) as n from ${sql.raw(rows[0]!.toast)}`.execute(db);
        return Number(counted.rows[0]!.n);
      };
      if (dialect === "postgres") {
        const { rows } = await sql<{ attstorage: string }>`select attstorage from pg_attribute where attrelid = 'inbound_requests'::regclass and attname = 'data_enc'`.execute(db);
        expect(rows[0]!.attstorage).toBe("e");
      }
      for (const [bytes, outOfLine] of [
        [5_000, false],
        [20_000, true],
      ] as const) {
        // Random letters: the sealed value is ciphertext whatever the body, and the body itself
        // must come back exactly, newlines and all.
        const body = JSON.stringify({ n: bytes, text: randomUUID().repeat(Math.ceil(bytes / 36)).slice(0, bytes) + "\n\u00e9" });
        const before = dialect === "postgres" ? await toastRows() : 0;
        const res = await send(t.url, `/in/${input.id}`, { body, headers: { "content-type": "application/json" } });
        expect(res.status).toBe(200);
        const row = await db.selectFrom("inbound_requests").select(["id", "data_enc"]).where("input_id", "=", input.id).orderBy("id", "desc").executeTakeFirstOrThrow();
        expect(row.data_enc!.length).toBeGreaterThan(bytes);
        if (dialect === "postgres") {
          const { rows } = await sql<{ c: string | null }>`select pg_column_compression(data_enc) as c from inbound_requests where id = ${row.id}`.execute(db);
          expect(rows[0]!.c, `${bytes} bytes compressed`).toBeNull();
          if (outOfLine) expect(await toastRows(), `${bytes} bytes in TOAST`).toBeGreaterThan(before);
          else expect(await toastRows(), `${bytes} bytes in TOAST`).toBe(before);
        }
        const shown = await getRequest(t, bucket.id, row.id);
        expect(shown.request).toMatchObject({ body, bodyEncoding: "utf8" });
        expect(shown.size).toBe(Buffer.byteLength(body));
      }
    });

    it("keeps only status, time and size of an ephemeral bucket's requests, and still forwards them", async () => {
      const { bucket, input, outputs } = await setup(t, { bucket: { ephemeral: true }, outputs: [`${receiver.url}/ephemeral`] });
      const r = tracedRequest();
      receiver.respond = () => ({ status: 202, body: r.c.answer, headers: { "x-answer": r.c.answer } });
      const res = await send(t.url, `/in/${input.id}${r.path}`, { body: r.body, headers: r.headers });
      expect(res.status).toBe(200);

      await vi.waitFor(() => expect(receiver.at(`/ephemeral/sub/${r.c.path}`)).toHaveLength(1));
      const got = receiver.at(`/ephemeral/sub/${r.c.path}`)[0]!;
      expect(got.body.toString()).toBe(r.body);
      expect(got.headers["x-trace"]).toBe(r.c.header);
      expect(got.url).toBe(`/ephemeral/sub/${r.c.path}?q=${r.c.query}&n=1`);

      const [summary] = await listRequests(t, bucket.id);
      await vi.waitFor(async () => expect((await getRequest(t, bucket.id, summary.id)).attempts).toHaveLength(1));
      const shown = await getRequest(t, bucket.id, summary.id);
      expect(shown).toMatchObject({ inputId: input.id, size: Buffer.byteLength(r.body), statusCode: 200, request: null });
      expect(shown.attempts[0]).toMatchObject({ endpointId: outputs[0].id, responseStatusCode: 202, response: "" });
      await expectAbsent(t, [r.c.body, r.c.header, r.c.query, r.c.path, r.c.answer, r.body]);

      const replay = await t.api("POST", `/api/v1/bucket/${bucket.id}/request/${summary.id}/replay`);
      expect(replay.status).toBe(409);
    });

    it("keeps serving when recording an ephemeral forward's attempt fails", async () => {
      // Storage refuses this output's attempt rows, as a database going away mid-forward would.
      const refuse =
        dialect === "sqlite"
          ? [`create trigger refuse_attempt before insert on attempts when new.url like '%/refused' begin select raise(abort, 'attempt refused'); end`]
          : [
              `create function refuse_attempt() returns trigger language plpgsql as $$ begin if new.url like '%/refused' then raise exception 'attempt refused'; end if; return new; end $$`,
              `create trigger refuse_attempt before insert on attempts for each row execute function refuse_attempt()`,
            ];
      for (const stmt of refuse) await sql.raw(stmt).execute(t.hw.ctx.store.db);
      const { input } = await setup(t, { bucket: { ephemeral: true }, outputs: [`${receiver.url}/refused`] });
      expect((await send(t.url, `/in/${input.id}`, { body: "{}" })).status).toBe(200);
      await vi.waitFor(() => expect(receiver.at("/refused")).toHaveLength(1));
      await vi.waitFor(() => expect(t.logs()).toContain("could not record delivery results"));
      expect((await send(t.url, `/in/${input.id}`, { body: "{}" })).status).toBe(200);
      await vi.waitFor(() => expect(receiver.at("/refused")).toHaveLength(2));
    });

    it("forwards a provider delivery id once per 24 hours per input, answering the repeats 2xx", async () => {
      const { bucket, input } = await setup(t, {
        input: { verification: { type: "github", secret: GITHUB_SECRET }, response: { mode: "static", status: 202, headers: { "x-ack": "1" }, body: "thanks" } },
        outputs: [`${receiver.url}/dedupe`],
      });
      const sibling = (await t.api("POST", `/api/v1/bucket/${bucket.id}/input`, { name: "sibling", verification: { type: "github", secret: GITHUB_SECRET } })).body;
      const body = JSON.stringify({ action: "opened", number: 1 });
      const headers = {
        "content-type": "application/json",
        "x-github-event": "pull_request",
        "x-github-delivery": randomUUID(),
        "x-hub-signature-256": await githubSign(GITHUB_SECRET, body),
      };
      const post = async (id = input.id) => {
        const res = await send(t.url, `/in/${id}`, { body, headers });
        await t.hw.worker.runUntilIdle();
        return res;
      };
      const dupesBefore = await metric(t, "hookwarden_ingress_requests_total", { outcome: "duplicate" });
      const first = await post();
      expect([first.status, first.text, first.headers["x-ack"]]).toEqual([202, "thanks", "1"]);
      expect(receiver.at("/dedupe")).toHaveLength(1);

      const repeat = await post();
      expect([repeat.status, repeat.text, repeat.headers["x-ack"]]).toEqual([202, "thanks", "1"]);
      expect(receiver.at("/dedupe")).toHaveLength(1);
      expect(await metric(t, "hookwarden_ingress_requests_total", { outcome: "duplicate" })).toBe(dupesBefore + 1);

      // The same id on another input is that input's first delivery.
      expect((await post(sibling.id)).status).toBe(200);
      expect(receiver.at("/dedupe")).toHaveLength(2);

      clock.advance(DAY - 1_000);
      expect((await post()).status).toBe(202);
      expect(receiver.at("/dedupe")).toHaveLength(2);
      clock.advance(1_000);
      expect((await post()).status).toBe(202);
      expect(receiver.at("/dedupe")).toHaveLength(3);
      expect((await post()).status).toBe(202);
      expect(receiver.at("/dedupe")).toHaveLength(3);
      expect((await listRequests(t, bucket.id)).filter((s) => s.inputId === input.id)).toHaveLength(2);
    });

    it("stores and forwards a delivery once when its retries arrive together with it and with other deliveries", async () => {
      const { bucket, input } = await setup(t, { input: { verification: { type: "github", secret: GITHUB_SECRET } }, outputs: [`${receiver.url}/together`] });
      const body = JSON.stringify({ action: "opened", number: 2 });
      const signed = { "content-type": "application/json", "x-github-event": "pull_request", "x-hub-signature-256": await githubSign(GITHUB_SECRET, body) };
      const [retried, other1, other2] = [randomUUID(), randomUUID(), randomUUID()];
      const dupesBefore = await metric(t, "hookwarden_ingress_requests_total", { outcome: "duplicate" });
      // Sent at once, so they share batches: a retry may meet its original in the same batch or in the next one.
      const answers = await Promise.all(
        [retried, other1, retried, other2, retried].map((id) => send(t.url, `/in/${input.id}`, { body, headers: { ...signed, "x-github-delivery": id } })),
      );
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
      await t.hw.worker.runUntilIdle();
      expect(receiver.at("/together").map((r) => r.headers["x-github-delivery"]).sort()).toEqual([retried, other1, other2].sort());
      expect(await metric(t, "hookwarden_ingress_requests_total", { outcome: "duplicate" })).toBe(dupesBefore + 2);
      expect((await listRequests(t, bucket.id)).filter((s) => s.inputId === input.id)).toHaveLength(3);
    });

    it("dedupes hostile delivery ids like any other: __proto__, SQL, an 8,000-character id; each stored once, its repeat a duplicate", async () => {
      const { bucket, input } = await setup(t, { input: { verification: { type: "github", secret: GITHUB_SECRET } }, outputs: [`${receiver.url}/hostile-ids`] });
      const body = JSON.stringify({ action: "opened", number: 3 });
      const signed = { "content-type": "application/json", "x-github-event": "pull_request", "x-hub-signature-256": await githubSign(GITHUB_SECRET, body) };
      const ids = ["__proto__", `' or 1=1; -- $1 "d"`, "x".repeat(8_000)];
      const dupesBefore = await metric(t, "hookwarden_ingress_requests_total", { outcome: "duplicate" });
      for (const round of [1, 2]) {
        const answers = await Promise.all(ids.map((id) => send(t.url, `/in/${input.id}`, { body, headers: { ...signed, "x-github-delivery": id } })));
        expect(answers.map((a) => a.status), `round ${round}`).toEqual([200, 200, 200]);
      }
      await t.hw.worker.runUntilIdle();
      expect(receiver.at("/hostile-ids")).toHaveLength(3);
      expect(await metric(t, "hookwarden_ingress_requests_total", { outcome: "duplicate" })).toBe(dupesBefore + 3);
      expect((await listRequests(t, bucket.id)).filter((s) => s.inputId === input.id)).toHaveLength(3);
    });

    it("dedupes on webhook-id by default and forwards every repeat with dedupe: false", async () => {
      const { bucket, input } = await setup(t, { outputs: [`${receiver.url}/by-webhook-id`] });
      const noDedupe = (await t.api("POST", `/api/v1/bucket/${bucket.id}/input`, { name: "all", dedupe: false })).body;
      expect(noDedupe.dedupe).toBe(false);
      expect(input.dedupe).toBe(true);
      const headers = { "content-type": "application/json", "webhook-id": `msg_${canary("id")}` };
      for (let i = 0; i < 3; i++) {
        expect((await send(t.url, `/in/${input.id}`, { body: "{}", headers })).status).toBe(200);
        expect((await send(t.url, `/in/${noDedupe.id}`, { body: "{}", headers })).status).toBe(200);
      }
      await t.hw.worker.runUntilIdle();
      expect(receiver.at("/by-webhook-id")).toHaveLength(4);
      const stored = await listRequests(t, bucket.id);
      expect(stored.filter((s) => s.inputId === input.id)).toHaveLength(1);
      expect(stored.filter((s) => s.inputId === noDedupe.id)).toHaveLength(3);
    });
  });
}
