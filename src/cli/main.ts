#!/usr/bin/env node
import { Command, Option } from "commander";
import { ConfigError, loadConfig as parseConfig, type Config, type ConfigInput } from "../config/index.js";
import { AgentStopError } from "../agents/exit.js";
import { HookwardenError } from "../errors/index.js";
import { agent } from "./agent.js";
import { decrypt } from "./decrypt.js";
import { keysRotate } from "./keys.js";
import { auditList, auditVerify } from "./audit.js";
import { orgCreate, orgList, tokenCreate, tokenList, tokenRevoke } from "./org.js";
import { serve } from "./serve.js";
import { incidentList, incidentPause, incidentResume, incidentRotate } from "./incident.js";
import { vacuum } from "./vacuum.js";
import { explainStartupError } from "./startup-errors.js";

/** The configuration of the command being run, so a failure can name the port or database it concerns. */
let current: Config | undefined;
function loadConfig(opts: Partial<ConfigInput>): Config {
  current = parseConfig(opts);
  return current;
}

const program = new Command("hookwarden")
  .description("Self-hosted, security-first webhook gateway")
  .version("0.1.0")
  .showHelpAfterError();

/** Flags shared by every command that opens the database. */
function storageOptions(cmd: Command): Command {
  return cmd
    .option("--data-dir <dir>", "where SQLite, the master key file and the lock live (env HOOKWARDEN_DATA_DIR)")
    .option("--database-url <url>", "postgres://... to use PostgreSQL instead of embedded SQLite (env HOOKWARDEN_DATABASE_URL)")
    .option("--database-schema <name>", "PostgreSQL schema to use (env HOOKWARDEN_DATABASE_SCHEMA)")
    .addOption(new Option("--log-level <level>", "log level").choices(["fatal", "error", "warn", "info", "debug", "trace", "silent"]))
    .addOption(new Option("--log-format <format>", "pretty (default on a terminal) or json (env HOOKWARDEN_LOG_FORMAT)").choices(["pretty", "json"]));
}

storageOptions(
  program
    .command("serve")
    .description("start the gateway (embedded SQLite in ./.hookwarden unless --database-url is given)")
    .option("--host <host>", "interface to listen on (env HOOKWARDEN_HOST)", undefined)
    .option("--port <port>", "port to listen on (env HOOKWARDEN_PORT)")
    .addOption(new Option("--role <role>", "all (default), api (HTTP API and /in, no delivery worker) or worker (deliveries; /health, /ready, /metrics only); api and worker need PostgreSQL (env HOOKWARDEN_ROLE)").choices(["all", "api", "worker"]))
    .option("--allow-secret-reveal", "let GET .../secret return signing secrets (off: they are write-only)")
    .option("--allow-private-networks <cidrs>", "comma-separated CIDRs deliveries may reach despite the SSRF guard, e.g. 10.0.0.0/8")
    .option("--retry-schedule <delays>", "delays between attempts after the first, e.g. 5s,5m,30m,2h,5h,10h,10h")
    .option("--request-timeout <duration>", "hard timeout of one attempt, at most 30s")
    .option("--rotation-overlap <duration>", "how long an old signing secret keeps signing after rotation (default 24h)")
    .option("--disable-after <duration>", "disable an endpoint that failed continuously this long (default 5d)")
    .option("--circuit-breaker-threshold <n>", "consecutive failures that pause an endpoint (default 10)")
    .option("--circuit-breaker-cooldown <duration>", "pause before probing a failing endpoint again (default 30s)")
    .option("--max-payload-size <bytes>", "largest accepted request body (default 1048576)")
    .option("--response-body-limit <bytes>", "bytes of each endpoint response kept (default 65536)")
    .option("--delivery-concurrency <n>", "attempts in flight per node (default 128)")
    .option("--endpoint-concurrency <n>", "attempts in flight per endpoint per node (default 32)")
    .option("--poll-interval <duration>", "how often to look for due retries, and live tails for new requests (default 1s)")
    .option("--group-commit <on>", "true (default) or false: share one commit (one fsync) among requests that arrive together")
    .option("--direct-hand-off <on>", "true (default) or false: start new deliveries on this node without a claim")
    .option("--delivery-cache <on>", "true (default) or false: keep endpoints ready to deliver to for 2 s (this node's changes apply at once)")
    .option("--prepared-statements <on>", "true (default) or false: PostgreSQL runs the hot statements prepared (false behind a pooler in transaction mode)")
    .option("--stream-heartbeat <duration>", "how often a live tail (event stream) sends a keep-alive comment (default 15s)")
    .option("--shutdown-grace <duration>", "how long SIGTERM waits for in-flight attempts (default 30s)")
    .option("--grpc-port <port>", "also accept agents over gRPC on this port (env HOOKWARDEN_GRPC_PORT; off by default; TLS as --tls-cert)")
    .option("--resend-window <duration>", "how far back unacknowledged agent deliveries are re-sent after a reconnect (default 10m)")
    .option("--vault-max-value-length <n>", "longest vault secret value accepted (default 2000)")
    .option("--template-output-limit <bytes>", "largest request a template may render (default 2097152)")
    .option("--trusted-proxies <cidrs>", "proxies whose X-Forwarded-For / X-Forwarded-Proto are believed, e.g. 10.0.0.0/8")
    .option("--unknown-input-status <status>", "200 (default: unknown inputs look like known ones) or 404")
    .option("--public-url <url>", "the URL providers use to reach this gateway (input URLs, Twilio signatures)")
    .option("--tls-cert <file>", "PEM certificate chain: serve HTTPS (and wss:// for agents) with --tls-key")
    .option("--tls-key <file>", "PEM private key of --tls-cert (keep it 0600)")
    .option("--retention <duration>", "how long message payloads, attempt bodies and received requests are kept, e.g. 90d (default 90d; env HOOKWARDEN_RETENTION)")
    .option("--retention-days <n>", "older form of --retention, in days")
    .option("--retention-interval <duration>", "how often the retention cleaner runs (default 1h)")
    .option("--retention-batch-size <n>", "rows the cleaner changes per transaction (default 500)")
    .option("--rejections-kept <n>", "rejected inbound requests kept per bucket, the newest (default 1000)")
    .option("--verification-failing-threshold <n>", "operational event ingress.verification_failing after this many bad signatures on one input (default 20)")
    .option("--verification-failing-window <duration>", "the window of --verification-failing-threshold (default 5m)")
    .option("--inbound-request-timeout <duration>", "an incoming request's headers and body must arrive within this (default 30s)")
    .option("--inbound-headers-timeout <duration>", "an incoming request's headers must arrive within this (default 10s)")
    .option("--inbound-body-idle-timeout <duration>", "cut off a request body that sends nothing for this long (default 10s)")
    .option("--keep-alive-timeout <duration>", "close an idle keep-alive connection after this (default 72s)")
    .option("--max-connections <n>", "open connections at most, all clients together (default 4096)")
    .option("--max-connections-per-ip <n>", "open connections at most from one address, 0 for no cap; trusted proxies exempt (default 256)")
    .option("--otlp-endpoint <url>", "export traces over OTLP/HTTP to this collector base URL, /v1/traces appended (env OTEL_EXPORTER_OTLP_ENDPOINT; off when unset)")
    .option("--otel-service-name <name>", "service.name of exported spans (env OTEL_SERVICE_NAME, default hookwarden)")
    .option("--otlp-export-delay <duration>", "how long finished spans are batched before export (default 5s)"),
).action(async (opts: Partial<ConfigInput>) => {
  await serve(loadConfig(opts));
});

const org = program.command("org").description("organisations (tenants) and their API tokens");
storageOptions(org.command("create <name>").description("create an organisation and print its first API token (shown once)")).action(
  async (name: string, opts: Partial<ConfigInput>) => {
    await orgCreate(loadConfig(opts), name);
  },
);
storageOptions(org.command("list").description("list organisations and how many API tokens each has")).action(async (opts: Partial<ConfigInput>) => {
  await orgList(loadConfig(opts));
});
const token = program.command("token").description("API tokens");
storageOptions(
  token
    .command("create")
    .description("create another API token for an organisation (shown once)")
    .requiredOption("--org <name>", "organisation name (hookwarden org list)")
    .option("--name <name>", "what the token is for, shown in lists and logs (default cli)")
    .addOption(new Option("--scope <scope>", "full, or read-only (GET only)").choices(["full", "read-only"]).default("full"))
    .option("--app <app>", "limit the token to one application (id or uid)"),
).action(async (opts: Partial<ConfigInput> & { org: string; name?: string; scope?: string; app?: string }) => {
  const { org: orgName, name, scope, app, ...rest } = opts;
  await tokenCreate(loadConfig(rest), orgName, { ...(name !== undefined ? { name } : {}), ...(scope !== undefined ? { scope } : {}), ...(app !== undefined ? { app } : {}) });
});
storageOptions(token.command("list").description("list API tokens (id, name, scope, created, last used); never their values").option("--org <name>", "only this organisation")).action(
  async (opts: Partial<ConfigInput> & { org?: string }) => {
    const { org: orgName, ...rest } = opts;
    await tokenList(loadConfig(rest), orgName);
  },
);
storageOptions(token.command("revoke <id>").description("revoke an API token by id (tok_...); servers refuse it within 5 s")).action(
  async (id: string, opts: Partial<ConfigInput>) => {
    await tokenRevoke(loadConfig(opts), id);
  },
);

const audit = program.command("audit").description("the tamper-evident log of every change made through the API");
storageOptions(
  audit
    .command("list")
    .description("audit entries, newest first, one JSON line each")
    .option("--org <name>", "only this organisation")
    .option("--token <id>", "only this token (tok_...)")
    .option("--limit <n>", "at most this many (default 100, max 1000)"),
).action(async (opts: Partial<ConfigInput> & { org?: string; token?: string; limit?: string }) => {
  const { org: orgName, token: tokenId, limit, ...rest } = opts;
  await auditList(loadConfig(rest), { ...(orgName !== undefined ? { org: orgName } : {}), ...(tokenId !== undefined ? { token: tokenId } : {}), ...(limit !== undefined ? { limit: Math.min(1000, Math.max(1, Number(limit) || 100)) } : {}) });
});
storageOptions(audit.command("verify").description("check the hash chain: finds an edited or deleted entry (exit status 1)")).action(async (opts: Partial<ConfigInput>) => {
  await auditVerify(loadConfig(opts));
});

const incident = program.command("incident").description("incident response: pause and resume deliveries, rotate every signing secret and API token");
type IncidentOpts = Partial<ConfigInput> & { org: string; app?: string; bucket?: string };
const incidentTarget = (cmd: Command) =>
  storageOptions(
    cmd
      .requiredOption("--org <name>", "organisation name (hookwarden org list)")
      .option("--app <app>", "only this application (id or uid)")
      .option("--bucket <bucket>", "only this bucket (id or name)"),
  );
incidentTarget(incident.command("pause").description("hold deliveries (an application, a bucket, or the whole organisation) in the queue; nothing is dropped, inbound keeps accepting")).action(
  async (opts: IncidentOpts) => {
    const { org: orgName, app, bucket, ...rest } = opts;
    await incidentPause(loadConfig(rest), { org: orgName, app, bucket });
  },
);
incidentTarget(incident.command("resume").description("deliver what a pause held, and everything after it")).action(async (opts: IncidentOpts) => {
  const { org: orgName, app, bucket, ...rest } = opts;
  await incidentResume(loadConfig(rest), { org: orgName, app, bucket });
});
storageOptions(incident.command("list").description("what is paused, by whom, since when").option("--org <name>", "only this organisation")).action(async (opts: Partial<ConfigInput> & { org?: string }) => {
  const { org: orgName, ...rest } = opts;
  await incidentList(loadConfig(rest), orgName);
});
storageOptions(
  incident
    .command("rotate")
    .description("new signing secrets for every endpoint and new API tokens (of an application, or of the organisation), printed once")
    .requiredOption("--org <name>", "organisation name (hookwarden org list)")
    .option("--app <app>", "only this application's endpoints and the tokens limited to it")
    .option("--overlap <duration>", "how long the old secrets and tokens keep working, e.g. 24h, 1h, 0 (default: --rotation-overlap, 24h)"),
).action(async (opts: Partial<ConfigInput> & { org: string; app?: string; overlap?: string }) => {
  const { org: orgName, app, overlap, ...rest } = opts;
  await incidentRotate(loadConfig(rest), { org: orgName, app, overlap });
});
storageOptions(
  program
    .command("vacuum")
    .description("SQLite: rebuild a database created before retention so it can give disk space back (once, server stopped; see README)"),
).action(async (opts: Partial<ConfigInput>) => {
  await vacuum(loadConfig(opts));
});

const keys = program.command("keys").description("the master key");
storageOptions(
  keys.command("rotate").description("re-seal every stored secret under a new master key (resumable; see README)"),
).action(async (opts: Partial<ConfigInput>) => {
  await keysRotate(loadConfig(opts));
});

program
  .command("decrypt [file]")
  .description("decrypt an encrypted webhook body (key from HOOKWARDEN_DECRYPT_KEY or --key-file; body from file or stdin)")
  .requiredOption("--cipher <cipher>", "aes-256-gcm, chacha20-poly1305, aes-256-cbc or aes-128-cbc (the webhook-encryption header)")
  .requiredOption("--iv <hex>", "the webhook-encryption-iv header")
  .option("--key-file <path>", "file holding the base64 key")
  .action(async (file: string | undefined, opts: { cipher: string; iv: string; keyFile?: string }) => {
    await decrypt({ ...opts, ...(file ? { input: file } : {}) });
  });

program
  .command("agent")
  .description("relay a gateway's inbound webhooks into this network over an outbound WebSocket or gRPC stream")
  .option("--server <url>", "the gateway: https://hooks.example.com (WebSocket), or grpcs://hooks.example.com:7443 (gRPC, its --grpc-port)")
  .option("--key <key>", "agent token key (ak_...)")
  .option("--secret <secret>", "agent token secret; prefer HOOKWARDEN_AGENT_SECRET (argv is visible in ps)")
  .option("--bucket <name>", "bucket to serve (with --forward-to)")
  .option("--forward-to <url>", "internal destination for that bucket's requests")
  .option("--config <file>", "JSON: {server, key, secretFile?, caFile?, routes: [{bucket, forwardTo}]}")
  .option("--ca-file <file>", "PEM CA certificate(s) to trust for a gateway whose certificate a private CA issued")
  .option("--check", "connect once to validate the configuration, the key/secret and the buckets, then exit (0: OK; see README for codes)")
  .option("--print-systemd-unit", "print a systemd unit that keeps the agent running, then exit")
  .option("--log-level <level>", "log level")
  .action(async (opts: Record<string, string | boolean | undefined>) => {
    await agent(opts);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  // Anticipated failures (port in use, database unreachable, data dir locked, bad key...) are one
  // line with the cause and the fix; only an unexpected error (a bug) prints its stack.
  const line = explainStartupError(err, { host: current?.host, port: current?.port, databaseUrl: current?.databaseUrl });
  const known = err instanceof ConfigError || err instanceof HookwardenError || err instanceof AgentStopError ? err.message : undefined;
  process.stderr.write(`hookwarden: ${line ?? known ?? (err as Error)?.stack ?? String(err)}\n`);
  // `hookwarden agent` has distinct codes for permanent refusals (src/agents/exit.ts).
  process.exit(err instanceof AgentStopError ? err.exitCode : 1);
});
