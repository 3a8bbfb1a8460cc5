import { userInfo } from "node:os";
import { Webhook } from "svix";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../helpers/agents.js";
import { runCli } from "../helpers/cli.js";
import { DIALECTS, TEST_PG_URL } from "../helpers/dialects.js";
import { createApp, createEndpoint, publish } from "../helpers/delivery.js";
import { storedForms } from "../helpers/ingress.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

for (const dialect of DIALECTS) {
  describe(`hookwarden incident, the CLI, next to a running server (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;
    let cli: (...args: string[]) => ReturnType<typeof runCli>;
    const at = (path: string) => receiver.received.filter((r) => r.url === path);

    beforeAll(async () => {
      t = await startTestServer(dialect);
      receiver = await new Receiver().start();
      const storage = dialect === "postgres" ? ["--database-url", TEST_PG_URL, "--database-schema", t.schema!] : ["--data-dir", t.dataDir];
      cli = (...args) => runCli([...args, ...storage], { HOOKWARDEN_MASTER_KEY: t.hw.ctx.config.masterKey!.reveal() }, 120_000);
    }, 60_000);
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    it("pause, list, resume and rotate: deliveries held then delivered, new secret printed once, every step audited as the OS user", async () => {
      const app = await createApp(t, "cli");
      await createEndpoint(t, app, { url: `${receiver.url}/cli` });
      const user = `cli:${userInfo().username}`;

      const paused = await cli("incident", "pause", "--org", "default", "--app", app);
      expect(paused.code, paused.stderr).toBe(0);
      expect(paused.stdout).toMatch(new RegExp(`^paused application ${app} of organisation "default"`));
      // The running server sees a pause made elsewhere on its next poll; this is that poll.
      await t.hw.pauses.refresh();
      for (let i = 0; i < 2; i++) await publish(t, app, { payload: { i } });
      await t.hw.worker.runUntilIdle();
      expect(at("/cli")).toHaveLength(0);

      const listed = await cli("incident", "list", "--org", "default");
      expect(listed.stdout).toMatch(new RegExp(`${app}\\s+app\\s+org_\\S+\\s+${user}`));

      const resumed = await cli("incident", "resume", "--org", "default", "--app", app);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.stdout).toMatch(/^resumed application/);
      await until("the held deliveries arrive", async () => {
        await t.hw.worker.runUntilIdle();
        return at("/cli").length >= 2;
      });

      const rotated = await cli("incident", "rotate", "--org", "default", "--app", app, "--overlap", "0");
      expect(rotated.code, rotated.stderr).toBe(0);
      const secret = /secret (whsec_\S+)/.exec(rotated.stdout)?.[1];
      expect(secret, rotated.stdout).toBeDefined();
      expect(rotated.stderr).toMatch(/shown only this once.*stopped working now/);
      await publish(t, app, { payload: { after: "rotate" } });
      await until("delivered with the new secret", async () => {
        await t.hw.worker.runUntilIdle();
        return at("/cli").length >= 3;
      });
      const last = at("/cli").at(-1)!;
      expect(() => new Webhook(secret!).verify(last.body, last.headers as Record<string, string>)).not.toThrow();

      const audit = await until("the CLI's audit entries", async () => {
        const res = await t.api("GET", "/api/v1/audit?action=CLI%20incident");
        return res.body.data.length >= 3 ? res : undefined;
      });
      expect(audit.body.data.map((e: any) => [e.action, e.resourceId, e.tokenName, e.tokenId])).toEqual([
        ["CLI incident rotate", app, user, null],
        ["CLI incident resume", app, user, null],
        ["CLI incident pause", app, user, null],
      ]);
      const seen = [audit.text, (await t.api("GET", "/api/v1/auth/token")).text, (await t.api("GET", `/api/v1/app/${app}/endpoint`)).text, t.logs(), paused.stderr, listed.stdout].join("\n");
      for (const form of storedForms(secret!)) expect(seen.includes(form)).toBe(false);
    }, 600_000);

    it("refuses ambiguous or hostile arguments in one line, changing nothing", async () => {
      const app = await createApp(t, "cli-hostile");
      const [both, overlap, org] = await Promise.all([
        cli("incident", "pause", "--org", "default", "--app", app, "--bucket", "b"),
        cli("incident", "rotate", "--org", "default", "--overlap", "-5m"),
        cli("incident", "pause", "--org", "no'such;org"),
      ]);
      for (const [r, re] of [
        [both, /not both/],
        [overlap, /--overlap/],
        [org, /No organisation named "no'such;org"/],
      ] as const) {
        expect(r.code).toBe(1);
        expect(r.stderr.trim().split("\n"), r.stderr).toHaveLength(1);
        expect(r.stderr).toMatch(re);
        expect(r.stdout).toBe("");
      }
      expect((await t.api("GET", "/api/v1/incident/pause")).body.data).toEqual([]);
    }, 600_000);
  });
}
