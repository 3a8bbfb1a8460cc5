import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../helpers/dialects.js";
import { ensureWebBuilt, launchChromium, seriousViolations } from "../helpers/browser.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const SHOTS = fileURLToPath(new URL("../../docs/screenshots/", import.meta.url));
const XSS = `<script>window.__pwned = 1</script><img src=x onerror=window.__pwned=2>`;
const HDR = { "x-hookwarden-console": "1" };

let browser: Browser;
beforeAll(async () => {
  ensureWebBuilt();
  mkdirSync(SHOTS, { recursive: true });
  // One browser for the whole file: the machine's two cores are shared.
  browser = await launchChromium();
}, 120_000);
afterAll(async () => {
  await browser?.close();
});

async function signIn(server: TestServer, token: string): Promise<string> {
  const res = await fetch(`${server.url}/console/api/session`, { method: "POST", headers: { ...HDR, "content-type": "application/json" }, body: JSON.stringify({ token }) });
  expect(res.status).toBe(201);
  return /hw_session=([^;]*)/.exec(res.headers.get("set-cookie") ?? "")![1]!;
}

for (const dialect of DIALECTS) {
  describe(`console (${dialect})`, () => {
    let server: TestServer;
    let receiver: Receiver;
    beforeAll(async () => {
      server = await startTestServer(dialect, { portalFrameAncestors: ["https://customer.example"] });
      receiver = await new Receiver().start();
      // The receiver's answer is hostile markup too: it is shown as text like the payload.
      receiver.respond = () => ({ status: 200, body: `<img src=y onerror="window.__pwned = 3">answer` });
    });
    afterAll(async () => {
      await receiver?.stop();
      await server?.stop();
    }, 90_000);

    it("serves the console and the portal with a strict CSP and security headers", async () => {
      const res = await fetch(`${server.url}/console/app/anything`);
      expect(res.status).toBe(200);
      const csp = res.headers.get("content-security-policy") ?? "";
      for (const d of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"]) expect(csp).toContain(d);
      expect(csp).not.toContain("unsafe-inline");
      expect(res.headers.get("x-frame-options")).toBe("DENY");
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("referrer-policy")).toBe("no-referrer");
      const html = await res.text();
      // No inline script or style in the document: every script has a src.
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(html).not.toMatch(/<style|style="/);
      const portal = await fetch(`${server.url}/portal/`);
      expect(portal.headers.get("content-security-policy")).toContain("frame-ancestors https://customer.example");
      expect(portal.headers.get("x-frame-options")).toBeNull();
      const asset = /src="(\/console\/assets\/[^"]+\.js)"/.exec(html)![1]!;
      const js = await fetch(server.url + asset);
      expect(js.status).toBe(200);
      expect(js.headers.get("content-type")).toContain("text/javascript");
    });

    it("serves no file outside the bundle, whatever the path", async () => {
      for (const p of ["/console/assets/../../package.json", "/console/assets/%2e%2e/%2e%2e/package.json", "/console/assets/..%2f..%2fpackage.json", "/console/assets/%00", "/console/assets/"]) {
        const res = await fetch(server.url + p);
        const text = await res.text();
        expect(text).not.toContain('"name": "hookwarden"');
        // Either the SPA document (the URL normalised outside /assets) or a JSON 404, never a 5xx.
        expect(res.status === 404 || (res.status === 200 && text.startsWith("<!doctype html>"))).toBe(true);
      }
    });

    it("trades a token for an HttpOnly SameSite=Strict session cookie, guarded against CSRF", async () => {
      const post = (body: string, headers: Record<string, string> = HDR) => fetch(`${server.url}/console/api/session`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
      // A cross-site form cannot add the header: refused before the token is even looked at.
      expect((await post(JSON.stringify({ token: server.token }), {})).status).toBe(403);
      const bad = await post(JSON.stringify({ token: "hwk_wrong_token_of_some_length" }));
      expect(bad.status).toBe(401);
      expect(await bad.json()).toMatchObject({ code: "E_UNAUTHORIZED" });
      for (const hostile of [JSON.stringify({ token: "x".repeat(10_000) }), '{"token":"a","__proto__":{"x":1}}', '{"token":{"$ne":null}}', '{"token":"a\\u0000b"}', "[".repeat(5000), "not json"]) {
        const res = await post(hostile);
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
        expect(await res.json()).toHaveProperty("code");
      }
      const ok = await post(JSON.stringify({ token: server.token }));
      expect(ok.status).toBe(201);
      const setCookie = ok.headers.get("set-cookie") ?? "";
      expect(setCookie).toMatch(/^hw_session=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=3600; HttpOnly; SameSite=Strict$/);
      expect(setCookie).not.toContain(server.token);
      const cookie = setCookie.split(";")[0]!;
      const apps = (headers: Record<string, string>) => fetch(`${server.url}/api/v1/app`, { headers: { cookie, ...headers } });
      expect((await apps(HDR)).status).toBe(200);
      // A valid cookie without the header (what a cross-site request would carry) is refused.
      const csrf = await apps({});
      expect(csrf.status).toBe(403);
      expect(await csrf.json()).toMatchObject({ code: "E_FORBIDDEN" });
      expect((await fetch(`${server.url}/api/v1/app`, { headers: { cookie: "hw_session=" + "A".repeat(43), ...HDR } })).status).toBe(401);
      // Signing out ends the session on the server, not just in the browser.
      expect((await fetch(`${server.url}/console/api/session`, { method: "DELETE", headers: { cookie, ...HDR } })).status).toBe(204);
      expect((await apps(HDR)).status).toBe(401);
    });

    it("a session sees only its own organisation's applications", async () => {
      const app = await server.api("POST", "/api/v1/app", { name: "org-a-app" });
      const other = await signIn(server, await server.newOrgToken(`other-${dialect}`));
      const res = await fetch(`${server.url}/api/v1/app/${app.body.id}`, { headers: { cookie: `hw_session=${other}`, ...HDR } });
      expect(res.status).toBe(404);
      const list = await (await fetch(`${server.url}/api/v1/app`, { headers: { cookie: `hw_session=${other}`, ...HDR } })).json();
      expect(JSON.stringify(list)).not.toContain(app.body.id);
    });

    it("a portal session sees its one application and nothing else", async () => {
      const a = (await server.api("POST", "/api/v1/app", { name: "portal-a", uid: `portal-a-${dialect}` })).body;
      const b = (await server.api("POST", "/api/v1/app", { name: "portal-b" })).body;
      const res = await fetch(`${server.url}/console/api/session`, { method: "POST", headers: { ...HDR, "content-type": "application/json" }, body: JSON.stringify({ token: server.token, app: a.uid }) });
      expect(res.status).toBe(201);
      const cookie = (res.headers.get("set-cookie") ?? "").split(";")[0]!;
      const get = (path: string) => fetch(server.url + path, { headers: { cookie, ...HDR } });
      expect((await get(`/api/v1/app/${a.id}`)).status).toBe(200);
      expect((await get(`/api/v1/app/${a.uid}/endpoint`)).status).toBe(200);
      for (const p of [`/api/v1/app/${b.id}`, `/api/v1/app/${b.id}/msg`, "/api/v1/app", "/api/v1/bucket", `/api/v1/app/${a.id}/../${b.id}`, `/api/v1/app/${a.id}%2F..%2F${b.id}`, `/api/v1/app/${a.id}/%2e%2e/${b.id}`]) {
        const r = await get(p);
        expect([p, r.status]).toEqual([p, 404]);
        expect(await r.text()).not.toContain("portal-b");
      }
      // Another organisation's application cannot be named at sign-in.
      const other = await server.newOrgToken(`portal-other-${dialect}`);
      const cross = await fetch(`${server.url}/console/api/session`, { method: "POST", headers: { ...HDR, "content-type": "application/json" }, body: JSON.stringify({ token: other, app: a.id }) });
      expect(cross.status).toBe(404);
    });

    it("opens the portal in Chromium, limited to one application", async () => {
      const a = (await server.api("POST", "/api/v1/app", { name: "Customer A" })).body;
      const b = (await server.api("POST", "/api/v1/app", { name: "Customer B" })).body;
      const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
      const page = await context.newPage();
      try {
        await page.goto(`${server.url}/portal/?app=${a.id}`);
        await page.getByLabel("Portal token").waitFor();
        expect(await seriousViolations(page)).toEqual([]);
        await page.getByLabel("Portal token").fill(server.token);
        await page.getByRole("button", { name: "Sign in" }).click();
        await page.getByRole("heading", { name: "Application Customer A" }).waitFor();
        expect(await seriousViolations(page)).toEqual([]);
        if (dialect === DIALECTS[0]) await page.screenshot({ path: `${SHOTS}portal-application.png`, fullPage: true });
        const status = await page.evaluate<number>(`fetch("/api/v1/app/${b.id}", { headers: { "x-hookwarden-console": "1" } }).then((r) => r.status)`);
        expect(status).toBe(404);
        expect(await page.content()).not.toContain("Customer B");
      } finally {
        await context.close();
      }
    }, 120_000);

    it("opens the portal from app-portal-access's link (no form, the key leaves the address); the customer sees the event catalogue, adds an endpoint, sends an example, rotates the secret once; nothing of another application", async () => {
      const a = (await server.api("POST", "/api/v1/app", { name: "Linked A" })).body;
      const b = (await server.api("POST", "/api/v1/app", { name: "Linked B" })).body;
      const example = { orderId: "o-1", note: "<img src=x onerror=\"window.__pwned = 4\">" };
      for (const [name, extra] of [
        ["order.shipped", { schemas: { "1": { examples: [example] } } }],
        ["order.beta", { featureFlag: "beta-orders" }],
        ["order.retired", { archived: true }],
      ] as const) {
        expect((await server.api("POST", "/api/v1/event-type", { name, description: `About ${name}`, ...extra })).status).toBe(201);
      }
      const access = (await server.api("POST", `/api/v1/auth/app-portal-access/${a.id}`, {})).body as { url: string; token: string };
      // The customer's own receiver (the suite's shared one counts the console test's deliveries).
      const customer = await new Receiver().start();
      const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
      await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url });
      const page = await context.newPage();
      const sent: string[] = [];
      page.on("request", (r) => sent.push(r.url()));
      try {
        await page.goto(access.url);
        // A portal token may not read the application record: the page is titled by its id.
        await page.getByRole("heading", { name: "Application", exact: true, level: 1 }).waitFor();
        await page.getByText(a.id).first().waitFor();
        expect(await page.getByLabel("Portal token").count()).toBe(0);
        // The key is gone from the address and from the history entry; no request carried it.
        expect(page.url()).toBe(`${server.url}/portal`);
        expect(await page.evaluate("location.hash")).toBe("");
        expect(sent.filter((u) => u.includes(access.token))).toEqual([]);

        // The catalogue: what the customer may subscribe to, without flagged or archived types.
        const catalogue = page.getByTestId("event-catalogue");
        await catalogue.getByText("order.shipped", { exact: true }).waitFor();
        expect(await catalogue.getByText("order.beta").count()).toBe(0);
        expect(await catalogue.getByText("order.retired").count()).toBe(0);
        await catalogue.getByText("Example of order.shipped").click();
        await catalogue.getByText("o-1").waitFor();
        expect(await page.evaluate<unknown>("window.__pwned")).toBeUndefined();
        expect(await seriousViolations(page)).toEqual([]);

        // An endpoint of their own, its secret shown once.
        await page.getByLabel("Endpoint URL").fill(`${customer.url}/portal-link`);
        await page.getByRole("button", { name: "Add endpoint" }).click();
        await page.getByTestId("endpoint-secret").waitFor();
        await page.getByRole("button", { name: "I have stored it" }).click();
        await page.getByRole("link", { name: `${customer.url}/portal-link` }).click();
        await page.getByRole("heading", { name: `Endpoint ${customer.url}/portal-link` }).waitFor();
        expect(await page.getByLabel(/Request template/).count()).toBe(0);

        // A test event: the type's example, signed, to this endpoint only.
        const before = customer.received.length;
        await page.getByLabel("Event type").selectOption("order.shipped");
        await page.getByRole("button", { name: "Send example" }).click();
        await page.getByRole("status").filter({ hasText: "Example of order.shipped sent as msg_" }).waitFor();
        await customer.waitFor(before + 1);
        const got = customer.received.slice(before).find((r) => r.url === "/portal-link")!;
        expect(JSON.parse(got.body)).toEqual(example);

        // Rotation: the new secret once, then gone.
        await page.getByRole("button", { name: "Rotate signing secret" }).click();
        await page.getByRole("status").filter({ hasText: "Signing secret rotated." }).waitFor();
        const shown = (await page.getByTestId("endpoint-secret").textContent())?.trim();
        expect(shown).toMatch(/^whsec_/);
        await page.reload();
        await page.getByRole("heading", { name: `Endpoint ${customer.url}/portal-link` }).waitFor();
        expect(await page.content()).not.toContain(shown!);
        // Operational events are the operator's (the API refuses portal tokens): no section, no error.
        await page.getByRole("heading", { name: "Health" }).waitFor();
        expect(await page.getByRole("heading", { name: "Operational events" }).count()).toBe(0);
        expect(await page.getByRole("alert").count()).toBe(0);
        expect(await seriousViolations(page)).toEqual([]);
        if (dialect === DIALECTS[0]) await page.screenshot({ path: `${SHOTS}portal-endpoint.png`, fullPage: true });

        const status = await page.evaluate<number>(`fetch("/api/v1/app/${b.id}", { headers: { "x-hookwarden-console": "1" } }).then((r) => r.status)`);
        expect(status).toBe(404);
      } finally {
        await context.close();
        await customer.stop();
      }
      // A link whose key is wrong (in a browser with no session) falls back to the sign-in form.
      const fresh = await browser.newContext();
      try {
        const other = await fresh.newPage();
        await other.goto(`${server.url}/portal#key=hwp_not_a_token`);
        await other.getByLabel("Portal token").waitFor();
        expect(other.url()).toBe(`${server.url}/portal`);
      } finally {
        await fresh.close();
      }
    }, 180_000);

    it("drives the console in Chromium: sign in, app, endpoint (secret once), publish, attempt, resend", async () => {
      const context: BrowserContext = await browser.newContext({ viewport: { width: 1200, height: 900 } });
      await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url });
      const page: Page = await context.newPage();
      const cspErrors: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error" && /Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
      });
      const shot = async (name: string) => {
        if (dialect === DIALECTS[0]) await page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });
      };
      const accessible = async () => expect(await seriousViolations(page)).toEqual([]);
      try {
        await page.goto(`${server.url}/console/`);
        await page.getByLabel("Organisation API token").waitFor();
        await accessible();
        await shot("console-sign-in");
        await page.getByLabel("Organisation API token").fill("hwk_not_a_real_token_at_all");
        await page.getByRole("button", { name: "Sign in" }).click();
        await page.getByRole("alert").filter({ hasText: "E_UNAUTHORIZED" }).waitFor();
        await page.getByLabel("Organisation API token").fill(server.token);
        await page.getByRole("button", { name: "Sign in" }).click();
        await page.getByRole("heading", { name: "Applications", level: 1 }).waitFor();

        // The token is nowhere the page's scripts can read: not in web storage, not in document.cookie.
        const stored = await page.evaluate<string>("JSON.stringify({ l: { ...localStorage }, s: { ...sessionStorage }, c: document.cookie })");
        expect(stored).not.toContain(server.token);
        expect(stored).not.toContain("hw_session");

        await page.getByLabel("Name").fill("Billing <b>bold</b>");
        await page.getByRole("button", { name: "Create application" }).click();
        await page.getByRole("link", { name: "Billing <b>bold</b>" }).click();
        await page.getByRole("heading", { name: "Application Billing <b>bold</b>" }).waitFor();
        await accessible();

        await page.getByLabel("Endpoint URL").fill(`${receiver.url}/hook`);
        await page.getByRole("button", { name: "Add endpoint" }).click();
        const secretEl = page.getByTestId("endpoint-secret");
        await secretEl.waitFor();
        const secret = (await secretEl.textContent())!.trim();
        expect(secret).toMatch(/^whsec_/);
        await page.getByRole("button", { name: "Copy secret" }).click();
        await page.getByRole("status").filter({ hasText: "Copied." }).waitFor();
        expect(await page.evaluate<string>("navigator.clipboard.readText()")).toBe(secret);
        await accessible();
        await shot("console-endpoint-secret");
        await page.getByRole("button", { name: "I have stored it" }).click();
        await secretEl.waitFor({ state: "detached" });
        await page.reload();
        await page.getByRole("cell", { name: `${receiver.url}/hook` }).waitFor();
        expect(await page.content()).not.toContain(secret);
        expect(await page.getByRole("cell", { name: "******" }).count()).toBe(1);

        await page.getByLabel("Event type", { exact: true }).fill("invoice.paid");
        await page.getByLabel("Payload (JSON)").fill(JSON.stringify({ html: XSS, amount: 42 }));
        await page.getByRole("button", { name: "Publish message" }).click();
        const msgLink = page.getByRole("link", { name: /^msg_/ });
        await msgLink.waitFor();
        await shot("console-application");
        await msgLink.click();
        await page.getByRole("heading", { name: /^Message msg_/ }).waitFor();

        // The attempt appears by itself (the page polls) and shows the answer as received.
        await receiver.waitFor(1);
        const attempt = page.getByTestId("attempt");
        await attempt.first().getByText("success").waitFor();
        expect(await attempt.first().getByTestId("response").textContent()).toBe(`<img src=y onerror="window.__pwned = 3">answer`);
        // The shown secret is the one that signed the delivery.
        const got = receiver.received[0]!;
        expect(() => new StandardWebhook(secret).verify(got.body, got.headers as Record<string, string>)).not.toThrow();

        // Markup in a payload or a response is text: nothing ran, no element was created.
        expect(await page.getByTestId("payload").textContent()).toContain(XSS);
        expect(await page.evaluate<unknown>("window.__pwned")).toBeUndefined();
        expect(await page.locator("main img, main script").count()).toBe(0);
        await accessible();
        await shot("console-message");

        await page.getByRole("button", { name: /^Resend to ep_/ }).first().click();
        await receiver.waitFor(2);
        await attempt.nth(1).waitFor();
        expect(await attempt.count()).toBe(2);
        expect(await page.evaluate<unknown>("window.__pwned")).toBeUndefined();
        expect(cspErrors).toEqual([]);

        // Signing out drops the session: the API refuses the cookie the browser still had.
        await page.getByRole("button", { name: "Sign out" }).click();
        await page.getByLabel("Organisation API token").waitFor();
        const after = await page.evaluate<number>('fetch("/api/v1/app", { headers: { "x-hookwarden-console": "1" } }).then((r) => r.status)');
        expect(after).toBe(401);
      } finally {
        await context.close();
      }
    }, 180_000);
  });
}
