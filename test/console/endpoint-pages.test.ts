import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Browser } from "playwright-core";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../helpers/dialects.js";
import { ensureWebBuilt, launchChromium, seriousViolations } from "../helpers/browser.js";
import { openConsole } from "../helpers/console-page.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const SHOTS = fileURLToPath(new URL("../../docs/screenshots/", import.meta.url));
const HOSTILE = `<img src=x onerror="window.__pwned=1">`;

let browser: Browser;
beforeAll(async () => {
  ensureWebBuilt();
  mkdirSync(SHOTS, { recursive: true });
  browser = await launchChromium();
}, 120_000);
afterAll(async () => {
  await browser?.close();
});

/** `datetime-local` text for an instant, in UTC (the browser context's zone). */
const local = (t: number) => new Date(t).toISOString().slice(0, 19);

async function statsOf(server: TestServer, app: string, ep: string): Promise<Record<string, number>> {
  return (await server.api("GET", `/api/v1/app/${app}/endpoint/${ep}/stats`)).body;
}

async function accessibleNow(page: import("playwright-core").Page): Promise<void> {
  expect(await seriousViolations(page)).toEqual([]);
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

for (const dialect of DIALECTS) {
  describe(`console endpoint, messages and vault pages (${dialect})`, () => {
    let server: TestServer;
    let receiver: Receiver;
    let failing = true;
    beforeAll(async () => {
      // No retries: a failed delivery is failed for good at once, which is what recover resends.
      server = await startTestServer(dialect, { retrySchedule: [] });
      receiver = await new Receiver().start();
      receiver.respond = (r) => (failing && r.body.includes('"fail":true') ? { status: 500, body: "down" } : { status: 200, body: "ok" });
    });
    afterAll(async () => {
      await receiver?.stop();
      await server?.stop();
    }, 90_000);

    it("filters messages by event type, endpoint status and date; shows health; recovers; rotates the secret once", async () => {
      const app = (await server.api("POST", "/api/v1/app", { name: "Shop" })).body;
      const ep = (await server.api("POST", `/api/v1/app/${app.id}/endpoint`, { url: `${receiver.url}/hook` })).body;
      const other = (await server.api("POST", `/api/v1/app/${app.id}/endpoint`, { url: `${receiver.url}/other`, filterTypes: ["never.sent"] })).body;
      const created = (await server.api("POST", `/api/v1/app/${app.id}/msg`, { eventType: "order.created", payload: { n: 1 } })).body;
      const failed = (await server.api("POST", `/api/v1/app/${app.id}/msg`, { eventType: "order.failed", payload: { n: 2, fail: true } })).body;
      await receiver.waitFor(2);
      await until(async () => (await statsOf(server, app.id, ep.id)).fail === 1, "the failed delivery");

      const { page, cspErrors, close } = await openConsole(browser, server, `/console/app/${app.id}`);
      const rows = page.getByTestId("message-row");
      const accessible = async () => expect(await seriousViolations(page)).toEqual([]);
      try {
        await page.getByRole("heading", { name: "Application Shop" }).waitFor();
        await expect.poll(() => rows.count()).toBe(2);
        await accessible();

        // Event type.
        await page.getByLabel("Event types").fill("order.failed");
        await page.getByRole("button", { name: "Apply filters" }).click();
        await expect.poll(() => rows.count()).toBe(1);
        expect(await rows.first().textContent()).toContain(failed.id);

        // Status is per endpoint: without one the page says so instead of guessing.
        await page.getByRole("button", { name: "Clear filters" }).click();
        await expect.poll(() => rows.count()).toBe(2);
        await page.getByLabel("Status").selectOption("fail");
        await page.getByRole("button", { name: "Apply filters" }).click();
        await page.getByRole("alert").filter({ hasText: "Choose an endpoint" }).waitFor();
        await page.getByLabel("Endpoint", { exact: true }).selectOption(ep.id);
        await page.getByRole("button", { name: "Apply filters" }).click();
        await expect.poll(() => rows.count()).toBe(1);
        expect(await rows.first().textContent()).toContain(failed.id);
        expect(await rows.first().getByRole("cell", { name: "fail", exact: true }).count()).toBe(1);
        await page.getByLabel("Status").selectOption("success");
        await page.getByRole("button", { name: "Apply filters" }).click();
        await expect.poll(async () => (await rows.allTextContents()).join()).toContain(created.id);
        expect(await rows.count()).toBe(1);
        // The other endpoint's filter matched neither message.
        await page.getByLabel("Status").selectOption("");
        await page.getByLabel("Endpoint", { exact: true }).selectOption(other.id);
        await page.getByRole("button", { name: "Apply filters" }).click();
        await page.getByText("No message matches.").waitFor();

        // Dates: nothing after tomorrow, both before it.
        await page.getByRole("button", { name: "Clear filters" }).click();
        await page.getByLabel("Published after").fill(local(Date.now() + 86_400_000));
        await page.getByRole("button", { name: "Apply filters" }).click();
        await page.getByText("No message matches.").waitFor();
        await page.getByRole("button", { name: "Clear filters" }).click();
        await page.getByLabel("Published before").fill(local(Date.now() + 86_400_000));
        await page.getByLabel("Event types").fill("order.created, order.failed");
        await page.getByRole("button", { name: "Apply filters" }).click();
        await expect.poll(() => rows.count()).toBe(2);
        await accessible();
        if (dialect === DIALECTS[0]) await page.screenshot({ path: `${SHOTS}console-messages-filtered.png`, fullPage: true });

        // Hostile filter text: refused or empty, never run, never a 5xx.
        await page.getByRole("button", { name: "Clear filters" }).click();
        await page.getByLabel("Event types").fill(`${HOSTILE},../../x,a\u0000b`);
        await page.getByRole("button", { name: "Apply filters" }).click();
        await page.getByText("No message matches.").or(page.getByRole("alert")).first().waitFor();
        expect(await page.getByRole("alert").filter({ hasText: /HTTP_5|E_INTERNAL/ }).count()).toBe(0);
        expect(await page.evaluate<unknown>("window.__pwned")).toBeUndefined();

        // Endpoint page: state, counts, charts.
        await page.getByRole("link", { name: `${receiver.url}/hook` }).click();
        await page.getByRole("heading", { name: `Endpoint ${receiver.url}/hook` }).waitFor();
        await page.getByTestId("stats").filter({ hasText: /^1\s*1\s*0\s*0$/ }).waitFor();
        await page.getByText("1 succeeded, 1 failed over").first().waitFor();
        await page.getByText(/median \d+ ms, 95th percentile \d+ ms, max \d+ ms over 2 attempt/).first().waitFor();
        // The charts' canvases are made in an effect, after the render that shows the figures above.
        await expect.poll(() => page.locator("[data-testid=chart] canvas").count()).toBe(2);
        expect(await page.getByTestId("endpoint-state").textContent()).toBe("enabled");
        expect(await page.getByTestId("endpoint-breaker").textContent()).toMatch(/^closed \(/);
        // Operational events: the failed message, exhausted at once (no retries), named by id.
        await page.getByTestId("operational-events").getByRole("row").filter({ hasText: "message.attempt.exhausted" }).filter({ hasText: `Message ${failed.id} failed for good (last answer 500)` }).waitFor();
        await accessible();
        if (dialect === DIALECTS[0]) await page.screenshot({ path: `${SHOTS}console-endpoint-health.png`, fullPage: true });

        // Recover: what failed since an hour ago goes again, and now succeeds.
        failing = false;
        await page.getByLabel("Failed since").fill(local(Date.now() - 3_600_000));
        await page.getByRole("button", { name: "Recover failed messages" }).click();
        await page.getByRole("status").filter({ hasText: "Recovery queued: 1 failed message(s) sent again." }).waitFor();
        await receiver.waitFor(3);
        expect(receiver.received[2]!.body).toContain('"fail":true');
        await page.getByText("2 succeeded, 1 failed over").first().waitFor();
        await page.getByTestId("stats").filter({ hasText: /^2\s*0\s*0\s*0$/ }).waitFor();
        // Recovering again finds nothing left to send.
        await page.getByRole("button", { name: "Recover failed messages" }).click();
        await page.getByRole("status").filter({ hasText: "Recovery queued: 0 failed message(s)" }).waitFor();

        // Rotation: the new secret once, then gone; it signs what is sent next.
        await page.getByRole("button", { name: "Rotate signing secret" }).click();
        const secretEl = page.getByTestId("endpoint-secret");
        await secretEl.waitFor();
        const secret = (await secretEl.textContent())!.trim();
        expect(secret).toMatch(/^whsec_/);
        await page.getByRole("button", { name: "Copy secret" }).click();
        await page.getByRole("status").filter({ hasText: "Copied." }).waitFor();
        expect(await page.evaluate<string>("navigator.clipboard.readText()")).toBe(secret);
        await accessible();
        if (dialect === DIALECTS[0]) await page.screenshot({ path: `${SHOTS}console-endpoint-rotated.png`, fullPage: true });
        await page.getByRole("button", { name: "I have stored it" }).click();
        await secretEl.waitFor({ state: "detached" });
        expect(await page.content()).not.toContain(secret);
        await server.api("POST", `/api/v1/app/${app.id}/msg`, { eventType: "order.created", payload: { n: 3 } });
        await receiver.waitFor(4);
        const got = receiver.received[3]!;
        expect(() => new StandardWebhook(secret).verify(got.body, got.headers as Record<string, string>)).not.toThrow();
        await page.reload();
        await page.getByRole("heading", { name: `Endpoint ${receiver.url}/hook` }).waitFor();
        await page.getByText("3 succeeded, 1 failed over").first().waitFor();
        expect(await page.content()).not.toContain(secret);
        expect(await page.evaluate<unknown>("window.__pwned")).toBeUndefined();
        expect(cspErrors).toEqual([]);
      } finally {
        await close();
      }
    }, 240_000);

    it("shows an open circuit breaker with its failure streak", async () => {
      // A server of its own whose breaker opens after two failures (the shared one keeps the default).
      const own = await startTestServer(dialect, { retrySchedule: [], circuitBreakerThreshold: 2, circuitBreakerCooldown: 60_000 });
      try {
        const app = (await own.api("POST", "/api/v1/app", { name: "Breaker" })).body;
        const ep = (await own.api("POST", `/api/v1/app/${app.id}/endpoint`, { url: `${receiver.url}/breaker-down` })).body;
        const before = receiver.received.length;
        const respond = receiver.respond;
        receiver.respond = (req) => (req.url === "/breaker-down" ? { status: 500, body: "down" } : respond?.(req));
        try {
          for (let i = 0; i < 2; i++) await own.api("POST", `/api/v1/app/${app.id}/msg`, { eventType: "t.e", payload: { i } });
          await receiver.waitFor(before + 2);
          await own.hw.worker.runUntilIdle();
        } finally {
          receiver.respond = respond;
        }
        const health = (await own.api("GET", `/api/v1/app/${app.id}/endpoint/${ep.id}`)).body.health;
        expect(health.consecutiveFailures).toBe(2);
        expect(Date.parse(health.circuitOpenUntil)).toBeGreaterThan(Date.now());
        const { page, close } = await openConsole(browser, own, `/console/app/${app.id}/endpoint/${ep.id}`);
        try {
          await page.getByTestId("endpoint-breaker").filter({ hasText: /^open until .* \(2 consecutive failure\(s\) since .*\): deliveries wait, one probe then$/ }).waitFor();
          expect(await seriousViolations(page)).toEqual([]);
        } finally {
          await close();
        }
      } finally {
        await own.stop();
      }
    }, 120_000);

    it("request editor: the preview follows an unsaved template as it is typed, secrets masked, errors as text; save; send a test", async () => {
      const app = (await server.api("POST", "/api/v1/app", { name: "Editor" })).body;
      const token = `crm_${Math.random().toString(36).slice(2)}_TOPSECRET`;
      expect((await server.api("POST", `/api/v1/app/${app.id}/secret`, { name: "CRM_TOKEN", value: token })).status).toBeLessThan(300);
      const ep = (await server.api("POST", `/api/v1/app/${app.id}/endpoint`, { url: `${receiver.url}/editor`, filterTypes: ["never.sent"] })).body;
      const saved = async () => (await server.api("GET", `/api/v1/app/${app.id}/endpoint/${ep.id}`)).body;
      const before = receiver.received.length;
      const { page, cspErrors, close } = await openConsole(browser, server, `/console/app/${app.id}/endpoint/${ep.id}`);
      const head = page.getByTestId("preview-head");
      const body = page.getByTestId("preview-body");
      try {
        await page.getByRole("heading", { name: "Request editor" }).waitFor();
        // The saved endpoint (no template): the default request, signed.
        await head.filter({ hasText: `POST ${receiver.url}/editor` }).waitFor();
        expect(await head.textContent()).toMatch(/^webhook-signature: v1,\*{6}$/m);
        expect(JSON.parse((await body.textContent())!)).toEqual({ id: 1, name: "Ada" });

        // Typing a template changes the preview, before anything is saved.
        const template = page.getByLabel("Request template (JSON; empty for none)");
        await template.fill(JSON.stringify({ method: "PUT", headers: { "X-Customer": "{{payload.name}}", "X-Key": "{{secrets.CRM_TOKEN}}" }, body: { who: "{{payload.name}}", html: HOSTILE } }));
        await head.filter({ hasText: `PUT ${receiver.url}/editor` }).waitFor();
        const text = (await head.textContent())!;
        expect(text).toMatch(/^x-customer: Ada$/m);
        expect(text).toMatch(/^x-key: \*{6}$/m);
        expect(JSON.parse((await body.textContent())!)).toEqual({ who: "Ada", html: HOSTILE });
        await page.getByLabel("Sample payload (JSON)").fill(JSON.stringify({ name: "Grace" }));
        await head.filter({ hasText: "x-customer: Grace" }).waitFor();
        await page.getByLabel("Auth").selectOption("bearer");
        await page.getByLabel("Vault secret name").fill("CRM_TOKEN");
        await head.filter({ hasText: "authorization: Bearer ******" }).waitFor();
        expect((await saved()).template).toBeNull();
        expect(await page.content()).not.toContain(token);
        expect(await page.evaluate<unknown>("window.__pwned")).toBeUndefined();
        expect(await page.locator("main img").count()).toBe(0);
        await accessibleNow(page);
        if (dialect === DIALECTS[0]) await page.screenshot({ path: `${SHOTS}console-request-editor.png`, fullPage: true });

        // Errors read as text: bad JSON in the browser, a bad template with the API's field and position.
        await template.fill(`{"headers": {"X-A": "{{payload.name"}`);
        await page.getByRole("alert").filter({ hasText: "not valid JSON" }).waitFor();
        await template.fill(JSON.stringify({ headers: { "X-A": "{{payload.name" } }));
        await page.getByRole("alert").filter({ hasText: /E_TEMPLATE_INVALID: body\.template\.headers\.X-A: unclosed \{\{ \(at character 0\)/ }).waitFor();
        await template.fill(JSON.stringify({ headers: { "X-A": "{{secrets.NOPE}}" } }));
        await page.getByRole("alert").filter({ hasText: "unknown secret NOPE" }).waitFor();
        await accessibleNow(page);

        // Save, then send a test with the saved settings.
        await template.fill(JSON.stringify({ headers: { "X-Customer": "{{payload.name}}", "X-Key": "{{secrets.CRM_TOKEN}}" } }));
        await head.filter({ hasText: "x-customer: Grace" }).waitFor();
        await page.getByRole("button", { name: "Save request settings" }).click();
        await page.getByRole("status").filter({ hasText: "Request settings saved." }).waitFor();
        expect((await saved()).template).toEqual({ headers: { "X-Customer": "{{payload.name}}", "X-Key": "{{secrets.CRM_TOKEN}}" } });
        expect((await saved()).auth).toEqual({ type: "bearer", tokenSecret: "CRM_TOKEN" });
        expect(receiver.received.length).toBe(before);
        await page.getByRole("button", { name: "Send test" }).click();
        await page.getByRole("status").filter({ hasText: "Test sent with the saved settings: success, HTTP 200." }).waitFor();
        await receiver.waitFor(before + 1);
        const got = receiver.received[before]!;
        expect(got.headers["x-customer"]).toBe("Grace");
        expect(got.headers["x-key"]).toBe(token);
        expect(got.headers.authorization).toBe(`Bearer ${token}`);
        expect(await page.content()).not.toContain(token);
        expect(cspErrors).toEqual([]);
      } finally {
        await close();
      }
    }, 180_000);

    it("vault: a stored value is sent once and never shown again; names and times only", async () => {
      const app = (await server.api("POST", "/api/v1/app", { name: "Vaulted" })).body;
      const value = `sk_live_${Math.random().toString(36).slice(2)}_TOPSECRET`;
      const replaced = `${value}_v2`;
      const { page, cspErrors, close } = await openConsole(browser, server, `/console/app/${app.id}`);
      try {
        await page.getByRole("link", { name: "Vault (write-only secrets)" }).click();
        await page.getByRole("heading", { name: "Vault", level: 1 }).waitFor();
        await page.getByText("The vault is empty.").waitFor();
        expect(await seriousViolations(page)).toEqual([]);

        await page.getByLabel("Name", { exact: true }).fill("STRIPE_KEY");
        await page.getByLabel("Value", { exact: true }).fill(value);
        await page.getByRole("button", { name: "Store value" }).click();
        await page.getByRole("status").filter({ hasText: "STRIPE_KEY stored." }).waitFor();
        const row = page.getByTestId("vault-row");
        await row.filter({ hasText: "STRIPE_KEY" }).waitFor();
        expect(await row.first().getByRole("cell", { name: "******" }).count()).toBe(1);
        expect(await page.getByLabel("Value", { exact: true }).inputValue()).toBe("");
        expect(await page.content()).not.toContain(value);
        expect(await seriousViolations(page)).toEqual([]);
        if (dialect === DIALECTS[0]) await page.screenshot({ path: `${SHOTS}console-vault.png`, fullPage: true });

        // Same name again replaces the value; still nothing readable, in the page or its API.
        await page.getByLabel("Name", { exact: true }).fill("STRIPE_KEY");
        await page.getByLabel("Value", { exact: true }).fill(replaced);
        await page.getByRole("button", { name: "Store value" }).click();
        await page.getByRole("status").filter({ hasText: "Value of STRIPE_KEY replaced." }).waitFor();
        expect(await row.count()).toBe(1);
        const api = await page.evaluate<string>(`fetch("/api/v1/app/${app.id}/secret", { headers: { "x-hookwarden-console": "1" } }).then((r) => r.text())`);
        expect(api).toContain("STRIPE_KEY");
        expect(api).not.toContain(value);
        await page.reload();
        await row.filter({ hasText: "STRIPE_KEY" }).waitFor();
        expect(await page.content()).not.toContain(value);

        // Hostile names are refused with the API's reason, and the typed value is not echoed.
        for (const name of ["../KEY", HOSTILE, "lower_case"]) {
          await page.getByLabel("Name", { exact: true }).fill(name);
          await page.getByLabel("Value", { exact: true }).fill(value);
          await page.getByRole("button", { name: "Store value" }).click();
          await page.getByRole("alert").filter({ hasText: "E_" }).waitFor();
          expect(await page.getByRole("alert").textContent()).not.toContain(value);
          expect(await page.content()).not.toContain(value);
        }
        expect(await page.evaluate<unknown>("window.__pwned")).toBeUndefined();
        expect(await row.count()).toBe(1);

        await page.getByRole("button", { name: "Delete STRIPE_KEY" }).click();
        await page.getByText("The vault is empty.").waitFor();
        expect(cspErrors).toEqual([]);
      } finally {
        await close();
      }
    }, 180_000);
  });
}
