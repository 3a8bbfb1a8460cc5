import { execFile } from "node:child_process";
import { realpathSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../helpers/gateway-process.js";

/** Runs `hookwarden agent ...` from src/ with no HOOKWARDEN_* variable but the ones given. */
function agentCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const childEnv: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("HOOKWARDEN_")) childEnv[k] = v;
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", "src/cli/main.ts", "agent", ...args], { cwd: REPO_ROOT, env: { ...childEnv, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe("hookwarden agent (command line)", () => {
  it("--print-systemd-unit prints a unit that keeps the agent running, without any secret on its command line", async () => {
    const { code, stdout } = await agentCli(["--print-systemd-unit"]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^\[Service\]$/m);
    expect(stdout).toMatch(/^\[Install\]$/m);
    const execStart = /^ExecStart=(.+)$/m.exec(stdout)?.[1];
    // Absolute paths of this installation: systemd's PATH need not contain `hookwarden`.
    const [node, bin, ...args] = execStart!.split(" ");
    expect(node).toBe(process.execPath);
    expect(bin).toBe(realpathSync(join(REPO_ROOT, "bin/hookwarden.js")));
    expect(args.slice(0, 1)).toEqual(["agent"]);
    expect(execStart).not.toMatch(/--secret/);
    expect(stdout).toMatch(/^Restart=always$/m);
    // A refusal (3: key/secret, 4: bucket) is not restarted: the answer would not change.
    expect(stdout).toMatch(/^RestartPreventExitStatus=3 4$/m);
    expect(stdout).toMatch(/^EnvironmentFile=/m);
  });

  it("refuses a destination that is not http(s): only HTTP requests travel", async () => {
    const { code, stderr } = await agentCli(["--server", "http://127.0.0.1:9", "--key", "ak_x", "--bucket", "b", "--forward-to", "file:///etc/passwd"], { HOOKWARDEN_AGENT_SECRET: "as_x" });
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/must be an http\(s\) URL/);
    expect(stderr).not.toMatch(/^\s+at /m);
  });
});
