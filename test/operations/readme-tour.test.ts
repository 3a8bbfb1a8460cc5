import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Webhook } from "standardwebhooks";
import { DIALECTS } from "../helpers/dialects.js";
import { REPO_ROOT } from "../helpers/gateway-process.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * The README's curl tour, run line by line as printed (with `$HW`, `$TOKEN` and the receiver's
 * address set for this test): it must end with a webhook delivered, signed with the secret the
 * endpoint's creation showed once.
 */
function tourCommands(): string[] {
  const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("### With curl"), readme.indexOf("### With the official svix client"));
  const block = /```sh\n(export HW=[\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error("README: the curl tour's block (starting with `export HW=`) was not found");
  const commands: string[] = [];
  let current = "";
  for (const line of block.split("\n")) {
    if (current === "" && (line.trim() === "" || line.trimStart().startsWith("#") || line.startsWith("export "))) continue;
    current += line.endsWith("\\") ? `${line.slice(0, -1)} ` : line;
    if (!line.endsWith("\\")) {
      commands.push(current.trim());
      current = "";
    }
  }
  return commands;
}

for (const dialect of DIALECTS) {
  describe(`the README's curl tour (${dialect})`, () => {
    let server: TestServer;
    const receiver = new Receiver();
    beforeAll(async () => {
      server = await startTestServer(dialect);
      await receiver.start();
    });
    afterAll(async () => {
      await server?.stop();
      await receiver.stop();
    });

    it("works line by line and ends with a webhook delivered", async () => {
      const commands = tourCommands();
      expect(commands.length).toBe(4);
      expect(commands.every((c) => c.startsWith("curl "))).toBe(true);
      // Asynchronously: the gateway answering curl runs in this process.
      const run = async (cmd: string) =>
        (
          await promisify(execFile)("bash", ["-c", cmd.replaceAll("http://127.0.0.1:9000", receiver.url)], {
            env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HW: server.url, TOKEN: server.token },
            encoding: "utf8",
          })
        ).stdout;
      const outputs: string[] = [];
      for (const cmd of commands.slice(0, -1)) outputs.push(await run(cmd));
      const endpoint = JSON.parse(outputs[1]!) as { secret: string };
      expect(endpoint.secret).toMatch(/^whsec_/);
      const message = JSON.parse(outputs[2]!) as { id: string; eventId: string };
      expect(message.eventId).toBe("inv_42_paid");

      await receiver.waitFor(1);
      const got = receiver.received[0]!;
      expect(got.url).toBe("/webhooks");
      expect(JSON.parse(got.body)).toEqual({ invoice: 42 });
      expect(got.headers["webhook-id"]).toBe(message.id);
      const headers = Object.fromEntries(Object.entries(got.headers).map(([k, v]) => [k, String(v)]));
      expect(new Webhook(endpoint.secret).verify(got.body, headers)).toEqual({ invoice: 42 });

      // The last line: the attempt, as the tour's comment says (its row is written once the
      // recorder flushes, which runUntilIdle waits for).
      await server.hw.worker.runUntilIdle();
      const attempts = JSON.parse(await run(commands.at(-1)!)) as { data: { statusText: string; responseStatusCode: number }[] };
      expect(attempts.data[0]).toMatchObject({ statusText: "success", responseStatusCode: 200 });
    });
  });
}
