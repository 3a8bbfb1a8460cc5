import { describe, expect, it } from "vitest";
import { HandOffBatch, type HandOff, type TakeRow } from "./hand-off.js";

/** A port that takes every offered row and records what comes back and what starts. */
function recordingPort() {
  const calls: string[] = [];
  const port: HandOff<string> = {
    take: (rows) => rows.slice(),
    unreserve: (rows) => void calls.push(`unreserve ${rows.map((r) => r.destination_id).join(",")}`),
    start: (jobs, held) => void calls.push(`start ${jobs.map((j) => j.destination_id).join(",")} with ${held}`),
  };
  return { port, calls };
}

const row = (destination: string): TakeRow => ({ org_id: "org_1", scope_id: "bkt_1", destination_id: destination, locked_by: null, run_at: 1 });

describe("HandOffBatch.withdraw: jobs a batch turned out not to insert (duplicate requests)", () => {
  it("gives back the slots taken for them, and starts only the others after the commit", () => {
    const { port, calls } = recordingPort();
    const queue = { committed: () => void calls.push("queue woken") };
    const batch = new HandOffBatch(port, queue);
    const [a, b, c] = [row("a"), row("b"), row("c")];
    expect(batch.offer([a, b, c], [a, b], 1)).toBe(true); // c stays queued
    batch.withdraw([b, c]); // c was never taken: nothing to give back for it
    batch.committed("requests");
    expect(calls).toEqual(["unreserve b", "start a with requests", "queue woken"]);
  });

  it("after a withdrawal, a failed commit gives back only what is still taken", () => {
    const { port, calls } = recordingPort();
    const batch = new HandOffBatch(port, { committed: () => void calls.push("queue woken") });
    const [a, b] = [row("a"), row("b")];
    batch.offer([a, b], [a, b], 1);
    batch.withdraw([a]);
    batch.failed();
    batch.committed("nothing");
    expect(calls).toEqual(["unreserve a", "unreserve b"]);
  });
});
