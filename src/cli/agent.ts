import { readFileSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { AgentClient } from "../agents/client.js";
import { AGENT_EXIT } from "../agents/exit.js";
import { envSecret } from "../config/index.js";
import { HookwardenError } from "../errors/index.js";
import { createLogger } from "../logger/index.js";
import { SecretValue } from "../vault/secret-value.js";

const fileSchema = z
  .object({
    server: z.string().url(),
    key: z.string().min(1),
    /** Prefer HOOKWARDEN_AGENT_SECRET; a file readable only by the agent's user is the other option. */
    secretFile: z.string().optional(),
    /** PEM CA certificate(s) for a gateway whose certificate a private CA issued. */
    caFile: z.string().optional(),
    routes: z.array(z.object({ bucket: z.string().min(1), forwardTo: z.string().url() }).strict()).min(1),
    maxConcurrency: z.number().int().min(1).max(1024).optional(),
  })
  .strict();

export interface AgentCliOptions {
  server?: string;
  key?: string;
  secret?: string;
  bucket?: string;
  forwardTo?: string;
  config?: string;
  caFile?: string;
  printSystemdUnit?: boolean;
  check?: boolean;
  logLevel?: string;
}

/** systemd splits ExecStart= on spaces; quotes keep a path with spaces whole. */
function unitWord(word: string): string {
  return /[\s"\\]/.test(word) ? `"${word.replace(/(["\\])/g, "\\$1")}"` : word;
}

/**
 * A unit that runs this very installation: the absolute paths of the node binary and of the
 * package's `bin/hookwarden.js` (resolved through npm's bin symlink), so it works whatever PATH
 * systemd has. The refusal exit codes are excluded from `Restart=always`: a wrong secret stays wrong.
 */
export function systemdUnit(
  nodePath: string = process.execPath,
  binPath: string = realpathSync(fileURLToPath(new URL("../../bin/hookwarden.js", import.meta.url))),
): string {
  const hidden = /^\/(home|root|run\/user)(\/|$)/.test(binPath);
  return `# /etc/systemd/system/hookwarden-agent.service
# Put the secret in /etc/hookwarden/agent.env (mode 0600):  HOOKWARDEN_AGENT_SECRET=as_...
# and the routes in /etc/hookwarden/agent.json, then:  systemctl enable --now hookwarden-agent
# Test it first:  hookwarden agent --check --config /etc/hookwarden/agent.json
${hidden ? `# WARNING: this installation lives under ${binPath.split("/").slice(0, 3).join("/")}, which ProtectHome=yes hides from the
# service. Install the package system-wide (npm install -g ./hookwarden-*.tgz) and print the unit again.
` : ""}[Unit]
Description=Hookwarden agent (relays webhooks into this network)
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=${unitWord(nodePath)} ${unitWord(binPath)} agent --config /etc/hookwarden/agent.json
EnvironmentFile=/etc/hookwarden/agent.env
Restart=always
RestartSec=2
# ${AGENT_EXIT.unauthorized}: key or secret refused, ${AGENT_EXIT.forbidden}: bucket refused; retrying cannot help.
RestartPreventExitStatus=${AGENT_EXIT.unauthorized} ${AGENT_EXIT.forbidden}
DynamicUser=yes
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
`;
}

/** `hookwarden agent`: connects out to the gateway and forwards to internal destinations until stopped. */
export async function agent(opts: AgentCliOptions): Promise<void> {
  if (opts.printSystemdUnit) {
    process.stdout.write(systemdUnit());
    return;
  }
  const logger = createLogger({ level: opts.logLevel ?? "info" });
  let server = opts.server;
  let key = opts.key;
  let routes = opts.bucket && opts.forwardTo ? [{ bucket: opts.bucket, forwardTo: opts.forwardTo }] : [];
  let secret = envSecret("HOOKWARDEN_AGENT_SECRET");
  let maxConcurrency: number | undefined;
  let caFile = opts.caFile;
  if (opts.config) {
    const parsed = fileSchema.safeParse(JSON.parse(readFileSync(opts.config, "utf8")));
    if (!parsed.success) throw new HookwardenError("E_CONFIG", 400, `${opts.config}: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    server ??= parsed.data.server;
    key ??= parsed.data.key;
    routes = [...routes, ...parsed.data.routes];
    maxConcurrency = parsed.data.maxConcurrency;
    caFile ??= parsed.data.caFile;
    if (!secret && parsed.data.secretFile) secret = new SecretValue(readFileSync(parsed.data.secretFile, "utf8").trim());
  }
  if (opts.secret) {
    logger.warn("--secret is visible to other users in the process list; prefer HOOKWARDEN_AGENT_SECRET");
    secret = new SecretValue(opts.secret);
  }
  if (!server || !key || !secret || routes.length === 0) {
    throw new HookwardenError("E_CONFIG", 400, "need --server, --key, a secret (HOOKWARDEN_AGENT_SECRET) and at least one --bucket/--forward-to route (or --config)");
  }
  let ca: Buffer | undefined;
  if (caFile) {
    try {
      ca = readFileSync(caFile);
    } catch (err) {
      throw new HookwardenError("E_CONFIG", 400, `cannot read the CA file ${caFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  let client: AgentClient;
  try {
    client = new AgentClient({ server, key, secret, routes, logger, ...(maxConcurrency ? { maxConcurrency } : {}), ...(ca ? { ca } : {}) });
  } catch (err) {
    // A bad route is the operator's configuration: one line saying so, not a stack trace.
    throw new HookwardenError("E_CONFIG", 400, (err as Error).message);
  }
  if (opts.check) {
    const end = await client.check();
    if (end.kind !== "checked") throw end.kind === "stopped" ? new Error("check interrupted") : end.error;
    const { hello } = end;
    const unrouted = hello.buckets.filter((b) => !routes.some((r) => r.bucket === b.name || r.bucket === b.id)).map((b) => b.name);
    process.stdout.write(
      `hookwarden agent --check: OK: ${server} accepted key ${key} (token "${hello.name}", mode ${hello.mode}) for ${hello.buckets.map((b) => b.name).join(", ")}\n` +
        routes.map((r) => `  ${r.bucket} -> ${r.forwardTo}\n`).join("") +
        (unrouted.length > 0 ? `  warning: no route for ${unrouted.join(", ")}\n` : ""),
    );
    return;
  }
  client.start();
  const stop = () => {
    logger.info("agent stopping");
    void client.stop().then(() => process.exit(AGENT_EXIT.ok));
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  const end = await client.done;
  // A refusal ends the run with its own exit code (main.ts); a signal exits above.
  if (end.kind === "refused" || end.kind === "unreachable") throw end.error;
}
