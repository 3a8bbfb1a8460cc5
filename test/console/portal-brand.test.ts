import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/index.js";
import { ensureWebBuilt, launchChromium, seriousViolations } from "../helpers/browser.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const SHOTS = fileURLToPath(new URL("../../docs/screenshots/", import.meta.url));
const LOGO = `<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><script>parent.__pwned=1</script><circle cx="20" cy="20" r="18" fill="#f5c400"/></svg>`;

// Branding is configuration, not storage: one dialect is enough.
describe("portal branding", () => {
  let browser: Browser;
  let server: TestServer;
  beforeAll(async () => {
    ensureWebBuilt();
    const dir = mkdtempSync(join(tmpdir(), "hookwarden-brand-"));
    writeFileSync(join(dir, "logo.svg"), LOGO);
    server = await startTestServer("sqlite", { portalBrandName: "Acme <b>Payments</b>", portalBrandColor: "#5a1a7a", portalLogo: join(dir, "logo.svg") });
    browser = await launchChromium();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  }, 90_000);

  it("refuses a colour that is not #rrggbb (no CSS injection through configuration)", () => {
    for (const bad of ["red", "#12345", "#123456; } body { display: none", "url(x)"]) expect(() => loadConfig({ portalBrandColor: bad }, {})).toThrow(/portalBrandColor/);
  });

  it("serves the brand as a same-origin stylesheet, JSON and logo file", async () => {
    expect(await (await fetch(`${server.url}/portal/brand.css`)).text()).toBe("header.top { background: #5a1a7a; }\n");
    expect(await (await fetch(`${server.url}/portal/brand.json`)).json()).toEqual({ name: "Acme <b>Payments</b>", logo: true });
    const logo = await fetch(`${server.url}/portal/brand/logo`);
    expect(logo.headers.get("content-type")).toBe("image/svg+xml");
    expect(logo.headers.get("content-security-policy")).toContain("default-src 'none'");
  });

  it("shows the operator's name, colour and logo in the portal, under the strict CSP", async () => {
    const app = (await server.api("POST", "/api/v1/app", { name: "Customer" })).body;
    const portal = await server.api("POST", `/api/v1/auth/app-portal-access/${app.id}`, {});
    expect(portal.status).toBeLessThan(300);
    const token: string = portal.body.token;
    expect(typeof token).toBe("string");
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    const page = await context.newPage();
    const cspErrors: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error" && /Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
    });
    try {
      await page.goto(`${server.url}/portal/?app=${app.id}`);
      await page.getByLabel("Portal token").fill(token);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("heading", { name: /Customer|Application/ }).first().waitFor();
      const brand = page.getByTestId("brand");
      await brand.getByText("Acme <b>Payments</b>").waitFor();
      // A portal token reaches its endpoints and messages; what it may not read is not asked for.
      await page.getByText("No message matches.").waitFor();
      expect(await page.getByRole("alert").count()).toBe(0);
      expect(await page.getByRole("button", { name: "Publish message" }).count()).toBe(0);
      await expect.poll(() => page.evaluate<string>(`getComputedStyle(document.querySelector("header.top")).backgroundColor`)).toBe("rgb(90, 26, 122)");
      await expect.poll(() => page.evaluate<number>(`document.querySelector("img.logo")?.naturalWidth ?? 0`)).toBeGreaterThan(0);
      // The SVG's script does not run as an image.
      expect(await page.evaluate<unknown>("window.__pwned")).toBeUndefined();
      expect(await seriousViolations(page)).toEqual([]);
      await page.screenshot({ path: `${SHOTS}portal-branded.png`, fullPage: true });
      expect(cspErrors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 180_000);
});
