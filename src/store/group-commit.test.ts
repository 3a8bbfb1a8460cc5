import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../../test/helpers/dialects.js";
import { openTestStore, type TestStore } from "../../test/helpers/store.js";
import { HookwardenError } from "../errors/index.js";
import { GroupCommit } from "./group-commit.js";

interface Item {
  n: number;
  resolve: (v: string) => void;
  reject: (e: unknown) => void;
}

/**
 * A group commit over `rows(n)` in a real table, recording each commit's batch. With `flushes`,
 * each `durable()` (the SQLite WAL's fsync) waits for the test to let it go, then flushes.
 */
function harness(t: TestStore, enabled: boolean, opts: { failing?: (batch: number[]) => unknown; flushes?: (() => void)[] } = {}) {
  const batches: number[][] = [];
  const { flushes } = opts;
  const store = flushes ? { ...t.ctx.store, durable: () => new Promise<void>((go) => flushes.push(go)).then(() => t.ctx.store.durable()) } : t.ctx.store;
  const group = new GroupCommit<Item>(store, {
    enabled,
    maxBatch: 8,
    refusal: (err) => (err instanceof HookwardenError ? err : new HookwardenError("E_VALIDATION", 422, "refused alone")),
    commit: async (batch, release) => {
      const ns = batch.map((p) => p.n);
      batches.push(ns);
      const failure = opts.failing?.(ns);
      if (failure) throw failure;
      group.settle(
        () => {
          for (const p of batch) p.resolve(`stored ${p.n}`);
          release();
        },
        (err) => {
          release();
          for (const p of batch) p.reject(err);
        },
      );
    },
  });
  const add = (n: number) => new Promise<string>((resolve, reject) => group.add({ n, resolve, reject }));
  return { group, batches, add };
}

for (const dialect of DIALECTS) {
  describe(`group commit (${dialect})`, () => {
    let t: TestStore;
    beforeAll(async () => {
      t = await openTestStore(dialect);
    });
    afterAll(async () => {
      await t?.drop();
    });

    it("shares one commit among items added in the same turn, at most maxBatch each", async () => {
      const { batches, add } = harness(t, true);
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => add(i)));
      expect(answers).toEqual(Array.from({ length: 20 }, (_, i) => `stored ${i}`));
      expect(batches).toEqual([
        [0, 1, 2, 3, 4, 5, 6, 7],
        [8, 9, 10, 11, 12, 13, 14, 15],
        [16, 17, 18, 19],
      ]);
    });

    it("commits the next batch once the last one is on disk: items arriving during its flush share one commit", async () => {
      const flushes: (() => void)[] = [];
      const { group, batches, add } = harness(t, true, { flushes });
      const answers = [add(0)];
      await expect.poll(() => flushes.length).toBe(1);
      // Three more, each in a turn of its own, while the first batch's flush runs.
      for (const n of [1, 2, 3]) {
        answers.push(add(n));
        await new Promise((r) => setImmediate(r));
      }
      expect(batches).toEqual([[0]]);
      flushes.shift()!();
      await expect.poll(() => flushes.length).toBe(1);
      expect(batches).toEqual([[0], [1, 2, 3]]);
      flushes.shift()!();
      await expect(Promise.all(answers)).resolves.toEqual(["stored 0", "stored 1", "stored 2", "stored 3"]);
      await group.drain();
    });

    it("off: commits every item alone, in order, with the same answers", async () => {
      const { batches, add } = harness(t, false);
      const answers = await Promise.all(Array.from({ length: 5 }, (_, i) => add(i)));
      expect(answers).toEqual(["stored 0", "stored 1", "stored 2", "stored 3", "stored 4"]);
      expect(batches).toEqual([[0], [1], [2], [3], [4]]);
    });

    it("retries a failed batch one by one, so one bad item does not fail its neighbours", async () => {
      const { batches, add } = harness(t, true, { failing: (ns) => (ns.includes(2) ? new Error("constraint on 2") : undefined) });
      const settled = await Promise.allSettled([0, 1, 2, 3].map(add));
      expect(settled.map((s) => s.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
      expect((settled[2] as PromiseRejectedResult).reason).toMatchObject({ code: "E_VALIDATION", status: 422 });
      expect(batches).toEqual([[0, 1, 2, 3], [0], [1], [2], [3]]);
    });

    it("refuses a whole batch at once on a storage fault (no one-by-one retry against a failing database)", async () => {
      const fault = Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" });
      const { batches, add } = harness(t, true, { failing: () => fault });
      const settled = await Promise.allSettled([0, 1, 2].map(add));
      expect(settled.every((s) => s.status === "rejected" && s.reason === fault)).toBe(true);
      expect(batches).toEqual([[0, 1, 2]]);
    });

    it("answers a barrier once the next batch is durable, and drain waits for every item", async () => {
      const { group, batches, add } = harness(t, true);
      const order: string[] = [];
      const items = [add(1).then((a) => order.push(a)), add(2).then((a) => order.push(a))];
      const barrier = group.barrier().then(() => order.push("barrier"));
      await group.drain();
      await Promise.all([...items, barrier]);
      expect(batches).toEqual([[1, 2]]);
      expect(order).toEqual(["stored 1", "stored 2", "barrier"]);
      // A barrier with nothing to store still waits for the store's flush, and resolves.
      await expect(group.barrier()).resolves.toBeUndefined();
    });
  });
}
