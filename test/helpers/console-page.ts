import type { Browser, Page } from "playwright-core";
import type { TestServer } from "./server.js";

export interface ConsolePage {
  page: Page;
  /** Content-Security-Policy violations the browser reported on the console. */
  cspErrors: string[];
  close: () => Promise<void>;
}

/**
 * A console page signed in through the sign-in form, then opened at `path`. Times are entered and
 * shown in UTC (the context's zone), and the clipboard may be read back.
 */
export async function openConsole(browser: Browser, server: TestServer, path: string): Promise<ConsolePage> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, timezoneId: "UTC" });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url });
  const page = await context.newPage();
  const cspErrors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
  });
  await page.goto(`${server.url}/console/`);
  await page.getByLabel("Organisation API token").fill(server.token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Applications", level: 1 }).waitFor();
  if (path !== "/console/") await page.goto(server.url + path);
  return { page, cspErrors, close: () => context.close() };
}
