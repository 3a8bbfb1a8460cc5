import { describe, expect, it } from "vitest";
import type { MessageRow } from "../../messages/index.js";
import { messageJson, messageOut } from "./index.js";

const base: MessageRow = {
  id: "msg_2Yf0",
  org_id: "org_1",
  app_id: "app_1",
  event_id: null,
  event_type: "invoice.paid",
  payload: JSON.stringify({ a: 1 }),
  channels: null,
  tags: null,
  created_at: Date.UTC(2026, 11, 1, 3, 0, 0, 123),
  deliver_at: null,
  trace_context: null,
  expires_at: Date.UTC(2026, 11, 31),
};

/** What a publish answered before `messageJson`: the object, serialised by Fastify. */
const before = (row: MessageRow, withContent: boolean) => JSON.stringify(messageOut(row, withContent));

describe("messageJson (the publish answer with the stored payload spliced in)", () => {
  const payloads: unknown[] = [
    { a: 1 },
    {},
    { "2": "integer-like keys come first", b: [1, 2.5, -0, 1e21, null, true], "\u2028": "line separator", quote: '"\\', emoji: "💥", nested: { x: { y: [{}] } } },
    { __proto__x: 1, constructor: "c", "\u00e9": "é" },
    // A hostile payload whose strings look like the answer's own structure stays inside its value.
    { evil: '"},"id":"msg_forged","eventType":"x","payload":{"', "\"}": "}{", tail: "\\" },
    JSON.parse('{"__proto__": {"polluted": true}, "a": [[[[[]]]]]}'),
  ];
  for (const [i, payload] of payloads.entries()) {
    it(`gives the same text as serialising messageOut (payload ${i})`, () => {
      // As the publisher stores it: JSON.stringify of the parsed, validated body.
      const row = { ...base, payload: JSON.stringify(JSON.parse(JSON.stringify(payload))) };
      expect(messageJson(row, true)).toBe(before(row, true));
      expect(JSON.parse(messageJson(row, true))).toEqual(messageOut(row, true));
      expect((JSON.parse(messageJson(row, true)) as { id: string }).id).toBe(base.id);
    });
  }

  it("keeps eventId, channels, tags and deliverAt, in messageOut's key order", () => {
    const row = { ...base, event_id: "evt-1", channels: JSON.stringify(["eu", "billing"]), tags: JSON.stringify(["t"]), deliver_at: base.created_at + 60_000 };
    const text = messageJson(row, true);
    expect(text).toBe(before(row, true));
    expect(Object.keys(JSON.parse(text) as object)).toEqual(["id", "eventId", "eventType", "payload", "channels", "tags", "timestamp", "deliverAt"]);
  });

  it("answers an empty payload for with_content=false and {expired: true} once the content was removed", () => {
    expect(JSON.parse(messageJson(base, false)).payload).toEqual({});
    expect(messageJson(base, false)).toBe(before(base, false));
    const removed = { ...base, payload: "" };
    expect(JSON.parse(messageJson(removed, true)).payload).toEqual({ expired: true });
    expect(messageJson(removed, true)).toBe(before(removed, true));
  });
});
