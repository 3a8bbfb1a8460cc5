import { describe, expect, it } from "vitest";
import { HookwardenError } from "../errors/index.js";
import { SecretValue } from "../vault/secret-value.js";
import type { RenderScope } from "./render.js";
import { compileTemplate, renderRequest, type RenderedRequest, type RequestTemplateDef } from "./request.js";

const ENDPOINT = "https://crm.example.com/hooks/in";

function scope(payload: unknown, over: Partial<RenderScope> = {}): RenderScope {
  return {
    eventType: "ticket.created",
    eventId: null,
    messageId: "msg_1",
    messageTimestamp: 0,
    timestamp: 1_700_000_000,
    payload,
    secret: (n) => (n === "TOKEN" ? new SecretValue("tok_123") : undefined),
    iv: undefined,
    preview: false,
    usedSecrets: new Set(),
    budget: { remaining: 1024 * 1024 },
    ...over,
  };
}

function render(def: RequestTemplateDef, payload: unknown = {}): RenderedRequest {
  return renderRequest(compileTemplate(def, ENDPOINT), scope(payload), JSON.stringify(payload));
}

function renderError(def: RequestTemplateDef, payload: unknown): HookwardenError {
  try {
    render(def, payload);
  } catch (err) {
    expect(err).toBeInstanceOf(HookwardenError);
    expect((err as HookwardenError).code).toBe("E_TEMPLATE_RENDER");
    expect((err as HookwardenError).status).toBe(422);
    return err as HookwardenError;
  }
  throw new Error("expected E_TEMPLATE_RENDER");
}

describe("URL", () => {
  const def: RequestTemplateDef = { url: "https://crm.example.com/api/customers/{{payload.id}}/notes?src=hw&ref={{payload.ref}}" };

  it("substitutes path and query values", () => {
    const url = new URL(render(def, { id: "c 42", ref: "r1" }).url);
    expect(url.host).toBe("crm.example.com");
    expect(url.pathname).toBe("/api/customers/c%2042/notes");
    expect([...url.searchParams]).toEqual([
      ["src", "hw"],
      ["ref", "r1"],
    ]);
  });

  it.each([
    ["../../admin", "/api/customers/..%2F..%2Fadmin/notes"],
    ["x/../../admin", "/api/customers/x%2F..%2F..%2Fadmin/notes"],
    ["a?x=1", "/api/customers/a%3Fx%3D1/notes"],
    ["a#frag", "/api/customers/a%23frag/notes"],
    ["a\\..\\b", "/api/customers/a%5C..%5Cb/notes"],
    ["%2e%2e", "/api/customers/%252e%252e/notes"],
    ["@evil.example", "/api/customers/%40evil.example/notes"],
  ])("a path value %j cannot change the path, query or fragment", (id, pathname) => {
    const url = new URL(render(def, { id, ref: "r" }).url);
    expect(url.host).toBe("crm.example.com");
    expect(url.pathname).toBe(pathname);
    expect([...url.searchParams.keys()]).toEqual(["src", "ref"]);
    expect(url.hash).toBe("");
  });

  it.each([".", ".."])("a path value of exactly %j is refused rather than resolved away", (id) => {
    expect(renderError(def, { id, ref: "r" }).message).toMatch(/\. or \.\. segment/);
    expect(renderError({ url: "https://crm.example.com/a/.{{payload.id}}/b" }, { id: "." }).message).toMatch(/segment/);
    expect(new URL(render(def, { id: ".%2E", ref: "r" }).url).pathname).toBe("/api/customers/.%252E/notes");
  });

  it("a query value in the URL cannot add parameters", () => {
    const url = new URL(render(def, { id: "1", ref: "x&src=evil#y" }).url);
    expect(url.searchParams.getAll("src")).toEqual(["hw"]);
    expect(url.searchParams.get("ref")).toBe("x&src=evil#y");
    expect(url.hash).toBe("");
  });

  it("uses the endpoint URL when the template has none, and appends encoded query parameters", () => {
    const r = render({ query: { q: "{{payload.q}}", "tenant id": "t-{{payload.t}}" } }, { q: "a&b=c d+e", t: 7 });
    const url = new URL(r.url);
    expect(url.origin + url.pathname).toBe(ENDPOINT);
    expect([...url.searchParams]).toEqual([
      ["q", "a&b=c d+e"],
      ["tenant id", "t-7"],
    ]);
    expect(r.url).not.toContain("a&b=c d");
  });
});

describe("headers", () => {
  it("are rendered with lower-case names", () => {
    const r = render({ headers: { "X-Ticket": "T-{{payload.n}}", Authorization: "Bearer {{secrets.TOKEN}}" } }, { n: 5 });
    expect(r.headers["x-ticket"]).toBe("T-5");
    expect(r.headers.authorization).toBe("Bearer tok_123");
  });

  it.each(["a\r\nX-Injected: 1", "a\nb", "a\rb", "a\0b"])("a value that would contain %j fails with E_TEMPLATE_RENDER", (v) => {
    expect(renderError({ headers: { "X-Name": "{{payload.v}}" } }, { v }).message).toMatch(/x-name would contain a line break/);
  });

  it("a line break made safe by a filter is fine", () => {
    expect(render({ headers: { "X-Name": "{{payload.v | url}}" } }, { v: "a\r\nb" }).headers["x-name"]).toBe("a%0D%0Ab");
  });
});

describe("body", () => {
  it("is the stored payload, byte for byte, when the template has none", () => {
    const stored = '{"b": 1,   "a": "é"}';
    const r = renderRequest(compileTemplate({ headers: { "X-A": "1" } }, ENDPOINT), scope(JSON.parse(stored)), stored);
    expect(r.body).toBe(stored);
    expect(r.method).toBe("POST");
    expect(r.headers["content-type"]).toBe("application/json");
  });

  it("is text with a text content type for a string template, or the given content type", () => {
    expect(render({ body: "id={{payload.id}}" }, { id: 3 })).toMatchObject({ body: "id=3", headers: { "content-type": "text/plain; charset=utf-8" } });
    const xml = render({ method: "PUT", body: "<id>{{payload.id | xml}}</id>", contentType: "application/xml" }, { id: "<&>" });
    expect(xml).toMatchObject({ method: "PUT", body: "<id>&lt;&amp;&gt;</id>", headers: { "content-type": "application/xml" } });
  });

  it.each(["GET", "DELETE"] as const)("%s sends no body and no content type", (method) => {
    const r = render({ method, url: "https://crm.example.com/c/{{payload.id}}" }, { id: 9 });
    expect(r).toEqual({ method, url: "https://crm.example.com/c/9", headers: {}, body: "" });
  });
});
