import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { runRetention } from "../../src/retention/index.js";
import { DIALECTS } from "../helpers/dialects.js";
import { listRequests, RawReceiver, rejectionsOf, send, setup } from "../helpers/ingress.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const DAY = 86_400_000;
const TOKEN = "retention-bucket-token-0123456789";

for (const dialect of DIALECTS) {
  describe(`retention deletes what is older than the bucket's retentionDays (${dialect})`, () => {
    let t: TestServer;
    let receiver: RawReceiver;
    let clock: FakeClock;

    beforeAll(async () => {
      clock = new FakeClock(Date.now());
      // No retention pass of its own while the test moves the clock.
      t = await startTestServer(dialect, { retentionInterval: "24h" }, { clock });
      receiver = await new RawReceiver().start();
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    const attemptsOf = async (requestId: string) => (await t.hw.ctx.store.db.selectFrom("attempts").select("id").where("item_id", "=", requestId).execute()).length;

    /** One accepted request (forwarded, so it has an attempt) and one rejection; returns the request's id. */
    async function traffic(input: { id: string }, bucketId: string, webhookId: string): Promise<string> {
      expect((await send(t.url, `/in/${input.id}`, { body: "{}", headers: { authorization: `Bearer ${TOKEN}`, "webhook-id": webhookId } })).status).toBe(200);
      expect((await send(t.url, `/in/${input.id}`, { body: "{}" })).status).toBe(401);
      await t.hw.worker.runUntilIdle();
      return (await listRequests(t, bucketId))[0].id as string;
    }

    it("deletes requests, their attempts and rejections past retentionDays, keeps newer ones and other buckets'", async () => {
      const short = await setup(t, { bucket: { retentionDays: 1, auth: { type: "token", token: TOKEN } }, outputs: [`${receiver.url}/short`] });
      const long = await setup(t, { bucket: { retentionDays: 3, auth: { type: "token", token: TOKEN } }, outputs: [`${receiver.url}/long`] });
      const t0 = clock.now();
      const oldShort = await traffic(short.input, short.bucket.id, "old-short");
      const oldLong = await traffic(long.input, long.bucket.id, "old-long");
      clock.advance(DAY / 2);
      const newShort = await traffic(short.input, short.bucket.id, "new-short");
      await vi.waitFor(async () => expect(await rejectionsOf(t, short.input.id)).toHaveLength(2));
      expect(await attemptsOf(oldShort)).toBe(1);

      // Exactly retentionDays old is still inside the window.
      clock.set(t0 + DAY);
      await runRetention(t.hw.ctx);
      expect((await listRequests(t, short.bucket.id)).map((r) => r.id)).toEqual([newShort, oldShort]);

      clock.set(t0 + DAY + 1);
      const report = await runRetention(t.hw.ctx);
      expect(report).toMatchObject({ requests: 1, attempts: 1, rejections: 1 });
      expect((await listRequests(t, short.bucket.id)).map((r) => r.id)).toEqual([newShort]);
      expect((await t.api("GET", `/api/v1/bucket/${short.bucket.id}/request/${oldShort}`)).status).toBe(404);
      expect(await attemptsOf(oldShort)).toBe(0);
      expect(await attemptsOf(newShort)).toBe(1);
      expect((await rejectionsOf(t, short.input.id)).length).toBe(1);
      expect((await listRequests(t, long.bucket.id)).map((r) => r.id)).toEqual([oldLong]);
      expect(await attemptsOf(oldLong)).toBe(1);
      expect((await rejectionsOf(t, long.input.id)).length).toBe(1);

      clock.set(t0 + 3 * DAY + 1);
      await runRetention(t.hw.ctx);
      expect(await listRequests(t, long.bucket.id)).toEqual([]);
      expect(await attemptsOf(oldLong)).toBe(0);
      expect(await rejectionsOf(t, long.input.id)).toEqual([]);
      expect((await listRequests(t, short.bucket.id)).map((r) => r.id)).toEqual([]);
    });

    it("drops expired dedupe keys, so the provider id is accepted again, and applies a changed retentionDays", async () => {
      const { bucket, input } = await setup(t, { bucket: { retentionDays: 30 }, outputs: [`${receiver.url}/dedupe`] });
      const dedupeRows = async () => (await t.hw.ctx.store.db.selectFrom("inbound_dedupe").select("input_id").where("input_id", "=", input.id).execute()).length;
      expect((await send(t.url, `/in/${input.id}`, { body: "{}", headers: { "webhook-id": "evt_1" } })).status).toBe(200);
      expect(await dedupeRows()).toBe(1);
      clock.advance(DAY - 1);
      await runRetention(t.hw.ctx);
      expect(await dedupeRows()).toBe(1);
      clock.advance(1);
      expect((await runRetention(t.hw.ctx)).dedupeKeys).toBeGreaterThanOrEqual(1);
      expect(await dedupeRows()).toBe(0);
      expect((await listRequests(t, bucket.id))).toHaveLength(1);

      expect((await t.api("PATCH", `/api/v1/bucket/${bucket.id}`, { retentionDays: 1 })).body.retentionDays).toBe(1);
      clock.advance(1);
      await runRetention(t.hw.ctx);
      expect(await listRequests(t, bucket.id)).toEqual([]);
    });
  });
}
