import { describe, expect, it } from "vitest";
import { HookwardenError } from "../errors/index.js";
import { MAX_TEMPLATE_LENGTH, parseTemplate } from "./parse.js";
import { compileTemplate, type RequestTemplateDef } from "./request.js";

const URL_ = "https://crm.example.com/hooks";

/** Runs `fn`, expects E_TEMPLATE_INVALID (422) and returns the error for further checks. */
function refused(fn: () => unknown): HookwardenError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(HookwardenError);
    const e = err as HookwardenError;
    expect(e.code, e.message).toBe("E_TEMPLATE_INVALID");
    expect(e.status).toBe(422);
    expect(e.validation?.[0]?.loc.length).toBeGreaterThan(0);
    return e;
  }
  throw new Error("expected the template to be refused");
}

/** A header template as a user saves it; the expression starts at character 4 of the value. */
const inHeader = (expr: string): RequestTemplateDef => ({ headers: { "X-Value": `id: ${expr}` } });

describe("hostile expressions are refused when the template is saved, with their position", () => {
  it.each([
    ["{{constructor.constructor}}", /"constructor" may not be referenced/],
    ["{{payload.__proto__.x}}", /"__proto__" may not be referenced/],
    ["{{payload.constructor}}", /"constructor" may not be referenced/],
    ["{{payload.a.prototype}}", /"prototype" may not be referenced/],
    ["{{payload.__defineGetter__}}", /may not be referenced/],
    ["{{this}}", /unknown "this"/],
    ["{{process.env.HOME}}", /unknown "process"/],
    ["{{require('fs')}}", /is not a reference/],
    ["{{payload.x | exec}}", /unknown filter "exec"/],
    ["{{payload.x | json | exec}}", /unknown filter "exec"/],
    ["{{payload['x']}}", /is not a reference/],
    ["{{payload.x()}}", /is not a reference/],
    ["{{payload.x + 1}}", /is not a reference/],
    ["{{}}", /is not a reference/],
    ["{{secrets.lower}}", /secrets\.NAME needs one name/],
    ["{{secrets}}", /secrets\.NAME needs one name/],
    ["{{secrets.A.B}}", /secrets\.NAME needs one name/],
    ["{{event.payload}}", /event has event\.type, event\.id/],
    ["{{timestamp.x}}", /timestamp has no fields/],
    ["{{payload.x", /unclosed \{\{/],
    ["{{ {{x}} }}", /nested \{\{/],
  ])("%s", (expr, why) => {
    const e = refused(() => compileTemplate(inHeader(expr), URL_));
    expect(e.message).toMatch(why);
    expect(e.message).toContain("(at character 4)");
    expect(e.message).toMatch(/^body\.template\.headers\.X-Value: /);
    expect(e.validation?.[0]?.loc).toEqual(["body", "template", "headers", "X-Value"]);
  });

  it("reports the position of the offending expression, not of the first one", () => {
    const src = "{{payload.a}} and {{payload.b}} and {{payload.constructor}}";
    const e = refused(() => parseTemplate(src, ["body"]));
    expect(e.message).toContain(`(at character ${src.lastIndexOf("{{")})`);
  });

  it("reports positions in a templated URL relative to the whole URL the user wrote", () => {
    const url = "https://crm.example.com/v1/{{payload.id}}/{{payload.__proto__}}";
    const e = refused(() => compileTemplate({ url }, URL_));
    expect(e.message).toContain(`(at character ${url.lastIndexOf("{{")})`);
    expect(e.validation?.[0]?.loc).toEqual(["body", "template", "url"]);
  });

  it("refuses a path deeper than 32 but accepts one of exactly 32 parts", () => {
    const deep = (n: number) => `{{payload${".a".repeat(n)}}}`;
    expect(() => compileTemplate({ body: deep(31) }, URL_)).not.toThrow();
    expect(refused(() => compileTemplate({ body: deep(32) }, URL_)).message).toMatch(/path deeper than 32 \(at character 0\)/);
    refused(() => compileTemplate({ body: deep(500) }, URL_));
  });

  it("refuses more than 1000 expressions but accepts 1000", () => {
    expect(() => compileTemplate({ body: "{{payload.a}}".repeat(1000) }, URL_)).not.toThrow();
    const e = refused(() => compileTemplate({ body: "{{payload.a}}".repeat(1001) }, URL_));
    expect(e.message).toMatch(/more than 1000 expressions/);
    expect(e.message).toContain(`(at character ${1000 * "{{payload.a}}".length})`);
  });

  it("refuses a template longer than 64 KiB but accepts one of exactly 64 KiB", () => {
    expect(MAX_TEMPLATE_LENGTH).toBe(64 * 1024);
    expect(() => compileTemplate({ body: "x".repeat(64 * 1024) }, URL_)).not.toThrow();
    const e = refused(() => compileTemplate({ body: "x".repeat(64 * 1024 + 1) }, URL_));
    expect(e.message).toMatch(/^body\.template\.body: template longer than 65536 characters/);
  });
});

describe("JSON body templates are bounded", () => {
  const nested = (depth: number): unknown => {
    let v: unknown = "{{payload.x}}";
    for (let i = 0; i < depth; i++) v = { a: v };
    return v;
  };

  it("refuses nesting deeper than 32, naming where", () => {
    expect(() => compileTemplate({ body: nested(32) }, URL_)).not.toThrow();
    const e = refused(() => compileTemplate({ body: nested(33) }, URL_));
    expect(e.message).toMatch(/nested deeper than 32/);
    expect(e.message).toContain(`body.template.body${".a".repeat(33)}`);
    // Refused without recursing through the whole value.
    refused(() => compileTemplate({ body: nested(5_000) }, URL_));
  });

  it("refuses more than 10,000 values", () => {
    expect(() => compileTemplate({ body: Array.from({ length: 9_999 }, () => 1) }, URL_)).not.toThrow();
    expect(refused(() => compileTemplate({ body: Array.from({ length: 10_000 }, () => 1) }, URL_)).message).toMatch(/more than 10000 values/);
  });

  it("checks every string of the body, wherever it is", () => {
    const e = refused(() => compileTemplate({ body: { a: [1, { b: "ok {{payload.constructor}}" }] } }, URL_));
    expect(e.message).toMatch(/^body\.template\.body\.a\.1\.b: .*\(at character 3\)/);
  });
});

describe("secrets must exist in the vault when the template is saved", () => {
  const known = new Set(["CRM_TOKEN", "API_KEY"]);

  it("accepts known secrets anywhere and lists them", () => {
    const t = compileTemplate(
      { url: "https://crm.example.com/x/{{secrets.API_KEY}}", headers: { Authorization: "Bearer {{secrets.CRM_TOKEN}}" }, body: { k: "{{secrets.API_KEY}}" } },
      URL_,
      known,
    );
    expect([...t.secrets].sort()).toEqual(["API_KEY", "CRM_TOKEN"]);
  });

  it.each([
    ["a header", { headers: { "X-Key": "k={{secrets.MISSING}}" } }, "body.template.headers.X-Key", 2],
    ["a query parameter", { query: { key: "{{secrets.MISSING}}" } }, "body.template.query.key", 0],
    ["the URL path", { url: "https://crm.example.com/a/{{secrets.MISSING}}" }, "body.template.url", "https://crm.example.com/a/".length],
    ["a text body", { body: "token {{secrets.MISSING}}" }, "body.template.body", 6],
    ["a JSON body", { body: { auth: { token: "{{secrets.MISSING}}" } } }, "body.template.body.auth.token", 0],
  ] as [string, RequestTemplateDef, string, number][])("refuses an unknown secret in %s with its field and position", (_where, def, loc, at) => {
    const e = refused(() => compileTemplate(def, URL_, known));
    expect(e.message).toBe(`${loc}: unknown secret MISSING: create it with POST /api/v1/app/{app_id}/secret first (at character ${at})`);
  });
});

describe("the request's shape", () => {
  it.each([
    "https://{{payload.host}}/x",
    "https://crm.{{payload.tenant}}.example.com/x",
    "https://crm.example.com:{{payload.port}}/x",
    "https://crm.example.com{{payload.path}}",
    "https://user:{{secrets.PASSWORD}}@crm.example.com/x",
    "{{payload.scheme}}://crm.example.com/x",
  ])("refuses a templated scheme, host or port: %s", (url) => {
    const e = refused(() => compileTemplate({ url }, URL_, new Set(["PASSWORD"])));
    expect(e.message).toMatch(/scheme, host and port must be literal|must start with http/);
  });

  it("refuses a URL that is not http(s) or has no valid host", () => {
    refused(() => compileTemplate({ url: "ftp://crm.example.com/x" }, URL_));
    refused(() => compileTemplate({ url: "javascript:alert(1)" }, URL_));
    refused(() => compileTemplate({ url: "https://exa mple.com/x" }, URL_));
  });

  it("refuses literal . or .. path segments", () => {
    refused(() => compileTemplate({ url: "https://crm.example.com/a/../admin/{{payload.id}}" }, URL_));
    refused(() => compileTemplate({ url: "https://crm.example.com/a/%2e%2e/admin" }, URL_));
    expect(() => compileTemplate({ url: "https://crm.example.com/a/..x/{{payload.id}}?p=.." }, URL_)).not.toThrow();
  });

  it.each(["GET", "DELETE"] as const)("refuses a %s request with a body", (method) => {
    expect(refused(() => compileTemplate({ method, body: { a: 1 } }, URL_)).message).toMatch(new RegExp(`${method} requests carry no body`));
    expect(compileTemplate({ method }, URL_).method).toBe(method);
  });

  it("refuses header names that are not HTTP tokens, or that Hookwarden sets itself", () => {
    refused(() => compileTemplate({ headers: { "X Bad": "1" } }, URL_));
    refused(() => compileTemplate({ headers: { "X-Bad:": "1" } }, URL_));
    refused(() => compileTemplate({ headers: { "Content-Length": "1" } }, URL_));
    refused(() => compileTemplate({ headers: { "Transfer-Encoding": "chunked" } }, URL_));
    refused(() => compileTemplate({ headers: { "webhook-signature": "v1,forged" } }, URL_));
    expect(refused(() => compileTemplate({ headers: { "Content-Type": "text/xml" } }, URL_)).message).toMatch(/template\.contentType/);
    refused(() => compileTemplate({ headers: { "X-A": "line\r\nX-Injected: 1" } }, URL_));
    refused(() => compileTemplate({ contentType: "text/plain\r\nX-Injected: 1" }, URL_));
  });
});
