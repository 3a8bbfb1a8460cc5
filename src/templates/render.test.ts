import { describe, expect, it } from "vitest";
import { HookwardenError, type ErrorCode } from "../errors/index.js";
import { SecretValue } from "../vault/secret-value.js";
import type { RenderScope } from "./render.js";
import { compileTemplate, renderRequest, type RequestTemplateDef } from "./request.js";

const URL_ = "https://crm.example.com/hooks";
const CREATED = Date.UTC(2024, 0, 2, 3, 4, 5, 678);

function scope(over: Partial<RenderScope> = {}): RenderScope {
  return {
    eventType: "invoice.paid",
    eventId: "evt_42",
    messageId: "msg_1",
    messageTimestamp: CREATED,
    timestamp: 1_704_164_645,
    payload: {},
    secret: () => undefined,
    iv: undefined,
    preview: false,
    usedSecrets: new Set(),
    budget: { remaining: 2 * 1024 * 1024 },
    ...over,
  };
}

/** Renders a text body template against `payload` (given as JSON text, as stored). */
function text(body: string, payloadJson: string, over: Partial<RenderScope> = {}): string {
  return renderRequest(compileTemplate({ body }, URL_), scope({ payload: JSON.parse(payloadJson), ...over }), payloadJson).body;
}

function json(body: unknown, payload: unknown, over: Partial<RenderScope> = {}): unknown {
  return JSON.parse(renderRequest(compileTemplate({ body }, URL_), scope({ payload, ...over }), JSON.stringify(payload)).body);
}

function fails(code: ErrorCode, fn: () => unknown): HookwardenError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(HookwardenError);
    expect((err as HookwardenError).code, (err as Error).message).toBe(code);
    return err as HookwardenError;
  }
  throw new Error(`expected ${code}`);
}

/** A vault value that counts how often it is revealed. */
class CountingSecret extends SecretValue {
  reveals = 0;
  override reveal(): string {
    this.reveals++;
    return super.reveal();
  }
}

describe("what a template can see", () => {
  it("renders event, message, timestamp and iv fields", () => {
    const out = text("{{event.type}}|{{event.id}}|{{message.id}}|{{message.eventType}}|{{message.timestamp}}|{{timestamp}}|{{iv}}", "{}", { iv: "00ff" });
    expect(out).toBe("invoice.paid|evt_42|msg_1|invoice.paid|2024-01-02T03:04:05.678Z|1704164645|00ff");
    expect(text("[{{event.id}}][{{iv}}]", "{}", { eventId: null })).toBe("[][]");
  });

  it("reads payload own properties only: nothing of Object.prototype is reachable", () => {
    // JSON.parse makes "__proto__" an ordinary own key; the parser refuses the name itself.
    const payload = '{"__proto__": {"polluted": "yes"}, "a": {"b": 1}}';
    expect(text("[{{payload.polluted}}][{{payload.toString}}][{{payload.hasOwnProperty}}][{{payload.valueOf}}][{{payload.a.isPrototypeOf}}]", payload)).toBe("[][][][][]");
    expect(text("{{payload.a.b}}", payload)).toBe("1");
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("does not read properties of strings or numbers", () => {
    expect(text("[{{payload.s.length}}][{{payload.n.toFixed}}][{{payload.s.0}}]", '{"s": "abc", "n": 1}')).toBe("[][][]");
  });

  it("indexes arrays by position only", () => {
    const payload = '{"items": [{"sku": "A-1"}, {"sku": "B-2"}], "top": ["x", "y"]}';
    expect(text("{{payload.items.1.sku}},{{payload.items.0.sku}},{{payload.top.1}}", payload)).toBe("B-2,A-1,y");
    expect(text("[{{payload.items.length}}][{{payload.items.5.sku}}][{{payload.items.map}}]", payload)).toBe("[][][]");
    expect(text("{{payload.1}}", '["a", "b"]')).toBe("b");
  });

  it("renders missing paths and null as empty text", () => {
    expect(text("[{{payload.nope}}][{{payload.a.b.c}}][{{payload.n}}]", '{"a": 1, "n": null}')).toBe("[][][]");
  });

  it("turns numbers, booleans, objects and arrays into text", () => {
    expect(text("{{payload.n}} {{payload.f}} {{payload.t}} {{payload.no}} {{payload.o}} {{payload.l}}", '{"n": 42.5, "f": false, "t": true, "no": 0, "o": {"k": "v"}, "l": [1, "2"]}')).toBe(
      '42.5 false true 0 {"k":"v"} [1,"2"]',
    );
    expect(text("{{payload}}", '{"whole": [1]}')).toBe('{"whole":[1]}');
  });

  it("keeps a value's JSON type when a body string is exactly one expression", () => {
    const payload = { n: 42, b: false, o: { k: [1, 2] }, s: "text", z: null };
    expect(json({ n: "{{payload.n}}", b: "{{payload.b}}", o: "{{payload.o}}", s: "{{payload.s}}", z: "{{payload.z}}", missing: "{{payload.nope}}" }, payload)).toEqual({
      n: 42,
      b: false,
      o: { k: [1, 2] },
      s: "text",
      z: null,
      missing: null,
    });
    // Anything else is text, and literal values stay as they were written.
    expect(json({ mixed: "#{{payload.n}}", filtered: "{{payload.n | json}}", ts: "{{timestamp}}", lit: [1, true, null, "plain"] }, payload)).toEqual({
      mixed: "#42",
      filtered: "42",
      ts: 1_704_164_645,
      lit: [1, true, null, "plain"],
    });
  });

  it("keeps a payload string inside its JSON string, whatever it contains", () => {
    const evil = '", "admin": true, "x": "';
    expect(json({ name: "Name: {{payload.s}}", admin: false }, { s: evil })).toEqual({ name: `Name: ${evil}`, admin: false });
  });

  it("writes a body template's own __proto__ key as data, without touching prototypes", () => {
    const out = renderRequest(compileTemplate({ body: JSON.parse('{"__proto__": {"x": "{{payload.a}}"}}') }, URL_), scope({ payload: { a: "v" } }), "{}").body;
    expect(out).toBe('{"__proto__":{"x":"v"}}');
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});

describe("filters", () => {
  const payload = JSON.stringify({ s: `a "b" & <c> 'd' é/?=` });

  it("json, url, base64 and xml encode as their names say, and chain left to right", () => {
    const s = `a "b" & <c> 'd' é/?=`;
    expect(text("{{payload.s | json}}", payload)).toBe(JSON.stringify(s));
    expect(text("{{payload.s | url}}", payload)).toBe(encodeURIComponent(s));
    expect(text("{{payload.s | base64}}", payload)).toBe(Buffer.from(s, "utf8").toString("base64"));
    expect(text("{{payload.s | xml}}", payload)).toBe("a &quot;b&quot; &amp; &lt;c&gt; &apos;d&apos; é/?=");
    expect(text("{{payload.s | json | base64}}", payload)).toBe(Buffer.from(JSON.stringify(s)).toString("base64"));
    expect(text("{{ payload.o|json }}", '{"o": {"a": [1]}}')).toBe('{"a":[1]}');
    expect(text("{{payload.missing | json}}", "{}")).toBe("null");
  });

  it("refuses a value that cannot be URL-encoded with a render error, not a crash", () => {
    fails("E_TEMPLATE_RENDER", () => text("{{payload.s | url}}", '{"s": "\\ud800"}'));
  });
});

describe("secrets", () => {
  it("are revealed only for a real render, and remembered for the redactor", () => {
    const token = new CountingSecret("tok&<en>");
    const s = scope({ secret: (n) => (n === "TOKEN" ? token : undefined) });
    const out = renderRequest(compileTemplate({ body: "{{secrets.TOKEN}} {{secrets.TOKEN | xml}}" }, URL_), s, "{}").body;
    expect(out).toBe("tok&<en> tok&amp;&lt;en&gt;");
    expect(token.reveals).toBeGreaterThan(0);
    expect(s.usedSecrets.has("tok&<en>")).toBe(true);
    expect(s.usedSecrets.has("tok&amp;&lt;en&gt;")).toBe(true);
  });

  it("missing from the vault at send time fails the render", () => {
    const e = fails("E_TEMPLATE_RENDER", () => renderRequest(compileTemplate({ body: "{{secrets.GONE}}" }, URL_), scope(), "{}"));
    expect(e.message).toContain("GONE");
  });

  const everywhere: RequestTemplateDef = {
    url: "https://crm.example.com/k/{{secrets.KEY}}/{{secrets.KEY | base64}}",
    query: { k: "{{secrets.KEY | url}}" },
    headers: { "X-Key": "Key {{secrets.KEY | base64}}" },
    body: { raw: "{{secrets.KEY}}", b64: "{{secrets.KEY | base64}}", xml: "<k>{{secrets.KEY | xml}}</k>", j: "{{secrets.KEY | json}}" },
  };

  it("render as ****** in preview, through every filter, without ever being revealed", () => {
    const key = new CountingSecret("s3cr3t-value");
    let lookups = 0;
    const s = scope({ preview: true, secret: () => (lookups++, key) });
    const r = renderRequest(compileTemplate(everywhere, URL_), s, "{}");
    expect(key.reveals).toBe(0);
    expect(s.usedSecrets.size).toBe(0);
    const all = JSON.stringify(r);
    for (const leak of ["s3cr3t", Buffer.from("s3cr3t-value").toString("base64").slice(0, 8)]) expect(all).not.toContain(leak);
    expect(new URL(r.url).pathname).toBe("/k/******/******");
    expect(new URL(r.url).searchParams.get("k")).toBe("******");
    expect(r.headers["x-key"]).toBe("Key ******");
    expect(JSON.parse(r.body)).toEqual({ raw: "******", b64: "******", xml: "<k>******</k>", j: "******" });
    expect(lookups).toBe(0);
  });

  it("render in preview even though preview is given no secret values", () => {
    const r = renderRequest(compileTemplate(everywhere, URL_), scope({ preview: true, secret: () => undefined }), "{}");
    expect(r.headers["x-key"]).toBe("Key ******");
  });
});

describe("output size", () => {
  const big = JSON.stringify({ big: "x".repeat(100 * 1024) });

  it.each([
    ["a text body", { body: "{{payload.big}}".repeat(1000) }],
    ["a JSON body", { body: Array.from({ length: 1000 }, () => "{{payload.big}}") }],
    ["a JSON body of mixed strings", { body: Array.from({ length: 1000 }, () => "> {{payload.big}}") }],
    ["headers", { headers: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`X-${i}`, "{{payload.big}}"])) }],
    ["the URL", { url: `https://crm.example.com/${"{{payload.big}}/".repeat(1000)}` }],
    ["query parameters", { query: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`q${i}`, "{{payload.big}}"])) }],
  ] as [string, RequestTemplateDef][])("a 100 KB value repeated in %s fails with E_TEMPLATE_OUTPUT_TOO_LARGE", (_where, def) => {
    const s = scope({ payload: JSON.parse(big) });
    fails("E_TEMPLATE_OUTPUT_TOO_LARGE", () => renderRequest(compileTemplate(def, URL_), s, big));
    // It stopped as soon as it crossed the limit, not after producing everything.
    expect(s.budget.remaining).toBeGreaterThan(-2 * 100 * 1024);
  });

  it("counts literal text too, and lets a request within the limit through", () => {
    // The endpoint URL's path ("/hooks") is output too.
    fails("E_TEMPLATE_OUTPUT_TOO_LARGE", () => text("x".repeat(60_000), "{}", { budget: { remaining: 60_005 } }));
    expect(text("x".repeat(60_000), "{}", { budget: { remaining: 60_006 } })).toHaveLength(60_000);
  });
});

describe("isolation", () => {
  it("two renders of one compiled template share no state", () => {
    const t = compileTemplate({ url: "https://crm.example.com/c/{{payload.id}}", headers: { "X-Token": "{{secrets.T}}" }, body: { who: "{{payload.who}}", o: "{{payload.o}}" } }, URL_);
    const before = JSON.stringify(t, (_k, v: unknown) => (v instanceof Set ? [...v] : v));
    const a = scope({ payload: { id: "a", who: "alice", o: { n: 1 } }, secret: () => new SecretValue("token-a"), budget: { remaining: 1024 } });
    const ra = renderRequest(t, a, "{}");
    const b = scope({ payload: { id: "b", who: "bobby", o: { n: 2 } }, secret: () => new SecretValue("token-b"), budget: { remaining: 1024 } });
    const rb = renderRequest(t, b, "{}");
    expect([ra.url, ra.headers["x-token"], ra.body]).toEqual(["https://crm.example.com/c/a", "token-a", '{"who":"alice","o":{"n":1}}']);
    expect([rb.url, rb.headers["x-token"], rb.body]).toEqual(["https://crm.example.com/c/b", "token-b", '{"who":"bobby","o":{"n":2}}']);
    expect([...a.usedSecrets]).toEqual(["token-a"]);
    expect([...b.usedSecrets]).toEqual(["token-b"]);
    expect(a.budget.remaining).toBe(b.budget.remaining);
    expect(JSON.stringify(t, (_k, v: unknown) => (v instanceof Set ? [...v] : v))).toBe(before);
  });
});
