import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentUrl, rawAgent } from "../helpers/agents.js";
import { DIALECTS } from "../helpers/dialects.js";
import { ensureWebBuilt, launchChromium, seriousViolations } from "../helpers/browser.js";
import { openConsole } from "../helpers/console-page.js";
import { github, githubBody, githubSecret, post } from "../helpers/provider-requests.js";
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

for (const dialect of DIALECTS) {
  describe(`console inbound pages (${dialect})`, () => {
    let server: TestServer;
    let receiver: Receiver;
    beforeAll(async () => {
      server = await startTestServer(dialect);
      receiver = await new Receiver().start();
    });
    afterAll(async () => {
      await receiver?.stop();
      await server?.stop();
    }, 90_000);

    it("bucket, input (secret never shown), output; tails a GitHub-signed webhook and a forged one as they arrive (server push), inspects it masked, replays it", async () => {
      const { page, cspErrors, close } = await openConsole(browser, server, "/console/");
      const accessible = async () => expect(await seriousViolations(page)).toEqual([]);
      try {
        await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Inbound" }).click();
        await page.getByRole("heading", { name: "Inbound buckets" }).waitFor();
        await page.getByText("No bucket yet.").waitFor();
        await accessible();
        await page.getByLabel("Bucket name").fill(`Payments ${HOSTILE}`);
        await page.getByRole("button", { name: "Create bucket" }).click();
        await page.getByRole("link", { name: `Payments ${HOSTILE}` }).click();
        await page.getByRole("heading", { name: `Bucket Payments ${HOSTILE}` }).waitFor();
        await page.getByText("No request received yet.").waitFor();

        // A GitHub input: the secret is typed once, sent, and never part of the page again.
        await page.getByLabel("Input name").fill("github-in");
        await page.getByLabel("Verify signatures of").selectOption("github");
        await page.getByLabel("Provider signing secret").fill(githubSecret);
        await page.getByRole("button", { name: "Add input" }).click();
        const inputRow = page.getByTestId("input-row").filter({ hasText: "github-in" });
        await inputRow.waitFor();
        expect(await inputRow.getByRole("cell", { name: "******" }).count()).toBe(1);
        expect(await page.getByLabel("Provider signing secret").inputValue()).toBe("");
        expect(await page.content()).not.toContain(githubSecret);

        // Its URL, copied for the sender.
        await page.getByRole("button", { name: "Copy URL of github-in" }).click();
        await page.getByRole("status").filter({ hasText: "Input URL copied." }).waitFor();
        const inputUrl = await page.evaluate<string>("navigator.clipboard.readText()");
        expect(inputUrl).toMatch(new RegExp(`^${server.url}/in/`));

        // A hostile output URL is refused with the API's reason (SSRF guard, scheme check).
        await page.getByLabel("Output name").fill("bad");
        await page.getByLabel("Forward to URL").fill("http://169.254.169.254/latest/meta-data");
        await page.getByRole("button", { name: "Add output" }).click();
        await page.getByRole("alert").filter({ hasText: "E_" }).waitFor();
        await page.getByLabel("Output name").fill("to receiver");
        await page.getByLabel("Forward to URL").fill(`${receiver.url}/fwd`);
        await page.getByRole("button", { name: "Add output" }).click();
        await page.getByRole("cell", { name: `${receiver.url}/fwd` }).waitFor();
        await accessible();

        // Live tail, pushed by the server (no reload, no polling): a badly signed request shows
        // up rejected with its reason (nothing of its body), the signed one verified and forwarded.
        await page.getByTestId("tail-state").filter({ hasText: "connected" }).waitFor();
        const fetched: string[] = [];
        page.on("request", (r) => {
          if (r.url().includes("/request")) fetched.push(`${r.resourceType()} ${new URL(r.url()).pathname}`);
        });
        const body = githubBody(`tail ${HOSTILE}`);
        const forgedBody = githubBody("forged-body-never-shown");
        const forged = await post(inputUrl, { headers: await github(forgedBody, "not-the-secret"), body: forgedBody });
        expect(forged.status).toBe(401);
        const rejected = page.getByTestId("rejected-row");
        await rejected.first().waitFor();
        expect(await rejected.first().getByTestId("rejection").textContent()).toMatch(/^E_SIGNATURE_INVALID: /);
        expect(await rejected.first().textContent()).toContain("rejected POST");
        const signed = await post(`${inputUrl}/hooks?token=query-credential-77&ref=main`, { headers: { ...(await github(body)), authorization: "Bearer header-credential-42" }, body });
        expect(signed.status).toBeLessThan(300);
        const rows = page.getByTestId("request-row");
        await rows.first().waitFor();
        expect(await rows.count()).toBe(1);
        await rows.first().getByRole("cell", { name: "verified (github)" }).waitFor();
        await rows.first().getByTestId("tail-forward").filter({ hasText: /^delivered, HTTP 200/ }).waitFor({ timeout: 30_000 });
        await receiver.waitFor(1);
        expect(receiver.received[0]!.body).toBe(body);
        expect(await page.content()).not.toContain("forged-body-never-shown");
        // Nothing was fetched to show them: they came over the stream opened before.
        expect(fetched).toEqual([]);
        await accessible();
        if (dialect === DIALECTS[0]) await page.screenshot({ path: `${SHOTS}console-inbound-bucket.png`, fullPage: true });

        // Inspect: body as text, provider headers visible, credentials masked.
        await rows.first().getByRole("button").click();
        const detail = page.getByTestId("request-detail");
        await detail.getByTestId("request-body").waitFor();
        expect(await detail.getByTestId("request-body").textContent()).toBe(body);
        const head = (await detail.getByTestId("request-head").textContent())!;
        expect(head).toContain("POST /hooks?token=******&ref=main");
        expect(head).toMatch(/^x-hub-signature-256: sha256=[0-9a-f]{64}$/m);
        expect(head).toMatch(/^authorization: \*{6}$/im);
        const html = await page.content();
        for (const secret of ["header-credential-42", "query-credential-77", githubSecret]) expect(html).not.toContain(secret);
        const forwardsOk = async () => {
          await detail.getByRole("button", { name: "Refresh request" }).click();
          return detail.getByTestId("forward").filter({ hasText: "success" }).count();
        };
        await expect.poll(forwardsOk, { timeout: 30_000 }).toBe(1);
        await accessible();

        // Replay: forwarded again, a second attempt listed.
        await detail.getByRole("button", { name: "Replay request" }).click();
        await detail.getByRole("status").filter({ hasText: "Replay queued to 1 output(s)." }).waitFor();
        await receiver.waitFor(2);
        expect(receiver.received[1]!.body).toBe(body);
        await expect.poll(forwardsOk, { timeout: 30_000 }).toBe(2);
        expect(await page.evaluate<unknown>("window.__pwned")).toBeUndefined();
        expect(await page.locator("main img").count()).toBe(0);
        await accessible();
        if (dialect === DIALECTS[0]) await page.screenshot({ path: `${SHOTS}console-inbound-request.png`, fullPage: true });

        // A second arrival shows up on top while the page stays open.
        const second = githubBody("second");
        expect((await post(inputUrl, { headers: await github(second), body: second })).status).toBeLessThan(300);
        await expect.poll(() => rows.count(), { timeout: 30_000 }).toBe(2);
        expect(cspErrors).toEqual([]);
      } finally {
        await close();
      }
    }, 240_000);

    it("agents: token secret shown once, connection seen live with its buckets, revocation disconnects", async () => {
      const bucket = (await server.api("POST", "/api/v1/bucket", { name: "private-net" })).body;
      const { page, cspErrors, close } = await openConsole(browser, server, "/console/");
      try {
        await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Agents" }).click();
        await page.getByRole("heading", { name: "Agents", level: 1 }).waitFor();
        await page.getByText("No agent token yet.").waitFor();
        await page.getByLabel("Agent name").fill("dc-1");
        await page.getByLabel("Buckets").selectOption([bucket.id]);
        await page.getByRole("button", { name: "Create agent token" }).click();
        const secretEl = page.getByTestId("endpoint-secret");
        await secretEl.waitFor();
        const secret = (await secretEl.textContent())!.trim();
        const row = page.getByTestId("agent-row").filter({ hasText: "dc-1" });
        await row.getByText("not connected").waitFor();
        const key = (await row.locator("code").textContent())!.trim();
        expect(await seriousViolations(page)).toEqual([]);
        await page.getByRole("button", { name: "I have stored it" }).click();
        await secretEl.waitFor({ state: "detached" });
        expect(await page.content()).not.toContain(secret);

        const agent = await rawAgent(agentUrl(server.url), key, secret);
        await row.getByText(/connected since .*\(private-net\)/).waitFor({ timeout: 30_000 });
        expect(await seriousViolations(page)).toEqual([]);
        if (dialect === DIALECTS[0]) await page.screenshot({ path: `${SHOTS}console-agents.png`, fullPage: true });
        const listed = await page.evaluate<string>(`fetch("/api/v1/agent-token", { headers: { "x-hookwarden-console": "1" } }).then((r) => r.text())`);
        expect(listed).not.toContain(secret);
        expect(await page.content()).not.toContain(secret);

        await page.getByRole("button", { name: "Revoke dc-1" }).click();
        await page.getByRole("status").filter({ hasText: "Agent token dc-1 revoked" }).waitFor();
        await agent.closed;
        await page.getByText("No agent token yet.").waitFor();
        expect(cspErrors).toEqual([]);
      } finally {
        await close();
      }
    }, 180_000);
  });
}
