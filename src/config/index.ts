import { z } from "zod";
import { parseCidr } from "../net/ssrf.js";
import { SecretValue } from "../vault/secret-value.js";
import { parseDuration, parseDurationList } from "./duration.js";

/** Delays between attempts after the first, immediate one: Svix's 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. */
export const SVIX_RETRY_SCHEDULE = ["5s", "5m", "30m", "2h", "5h", "10h", "10h"].map(parseDuration);

// Strings are parsed after the union, not inside it: a failing union branch's own message is
// replaced by zod's bare "Invalid input", and the operator would not learn what a duration looks like.
const duration = z
  .union([z.number(), z.string()])
  .transform((v, ctx) => {
    if (typeof v === "number") return v;
    try {
      return parseDuration(v);
    } catch (e) {
      ctx.addIssue({ code: "custom", message: (e as Error).message });
      return z.NEVER;
    }
  })
  .pipe(z.number().nonnegative());

const DAY_MS = 86_400_000;
/** Svix keeps message payloads 90 days unless told otherwise. */
export const DEFAULT_RETENTION_DAYS = 90;

const bool = z.union([z.boolean(), z.enum(["true", "false", "1", "0", ""]).transform((s) => s === "true" || s === "1")]);

const list = z.union([z.array(z.string()), z.string().transform((s) => s.split(",").map((x) => x.trim()).filter(Boolean))]);

const cidrList = list.default([]).transform((items, ctx) => {
  for (const item of items) {
    try {
      parseCidr(item);
    } catch (e) {
      ctx.addIssue({ code: "custom", message: (e as Error).message });
    }
  }
  return items;
});

const schema = z.object({
  host: z.string().min(1).default("127.0.0.1"),
  port: z.coerce.number().int().min(0).max(65535).default(8071),
  /**
   * What this node runs (issue 12): `all` (API, public inbound and delivery workers), `api` (the
   * HTTP API and `/in`, no worker: jobs reach workers through the queue and NOTIFY), or `worker`
   * (workers, with only /health, /ready and /metrics on the port). Split roles need PostgreSQL.
   */
  role: z.enum(["all", "api", "worker"]).default("all"),
  dataDir: z.string().min(1).default("./.hookwarden"),
  databaseUrl: z
    .string()
    .regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL; leave unset for embedded SQLite")
    .optional(),
  databaseSchema: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case PostgreSQL identifier")
    .optional(),
  masterKey: z.string().min(1).optional(),
  masterKeyPrevious: z.string().min(1).optional(),
  adminToken: z.string().min(24, "must be at least 24 characters").optional(),
  allowSecretReveal: bool.default(false),
  allowPrivateNetworks: cidrList,
  retrySchedule: z
    .union([z.array(z.number().nonnegative()), z.string()])
    .transform((v, ctx) => {
      if (typeof v !== "string") return v;
      try {
        return parseDurationList(v);
      } catch (e) {
        ctx.addIssue({ code: "custom", message: (e as Error).message });
        return z.NEVER;
      }
    })
    .default(SVIX_RETRY_SCHEDULE),
  requestTimeout: duration.default(30_000).refine((ms) => ms > 0 && ms <= 30_000, "must be between 1ms and 30s"),
  rotationOverlap: duration.default(24 * 3_600_000),
  disableAfter: duration.default(5 * 86_400_000),
  circuitBreakerThreshold: z.coerce.number().int().min(1).default(10),
  circuitBreakerCooldown: duration.default(30_000),
  maxPayloadSize: z.coerce.number().int().min(1024).default(1024 * 1024),
  responseBodyLimit: z.coerce.number().int().min(0).default(64 * 1024),
  deliveryConcurrency: z.coerce.number().int().min(1).default(128),
  /** Optimisations, each with an off switch (the suite runs with them on and off): see ARCHITECTURE.md. */
  groupCommit: bool.default(true),
  directHandOff: bool.default(true),
  deliveryCache: bool.default(true),
  preparedStatements: bool.default(true),
  endpointConcurrency: z.coerce.number().int().min(1).default(32),
  pollInterval: duration.default(1000),
  idempotencyTtl: duration.default(24 * 3_600_000),
  trustedProxies: cidrList,
  unknownInputStatus: z.coerce.number().refine((n) => n === 200 || n === 404, "must be 200 or 404").default(200),
  publicUrl: z.string().url().regex(/^https?:\/\//, "must be an http(s) URL").optional(),
  /** PEM files: with both, the API, the public ingress and the agent WebSocket (wss://) use TLS. */
  tlsCert: z.string().min(1).optional(),
  tlsKey: z.string().min(1).optional(),
  /**
   * Issue 11: how long message payloads, attempt bodies and received requests are kept (Svix's
   * default, 90 days). Unset: `retentionDays` days if that older flag is given, else 90 days.
   */
  retention: duration.refine((ms) => ms >= 60_000 && ms <= 3650 * 86_400_000, "must be between 1m and 3650d").optional(),
  /** Older flag: the default retention of new buckets, in days; `--retention` supersedes it. */
  retentionDays: z.coerce.number().int().min(1).max(3650).optional(),
  retentionInterval: duration.default(3_600_000),
  /**
   * Operational webhooks (issue 11 §3): `ingress.verification_failing` is sent when one input
   * refuses this many requests for a bad signature within the window (then at most once a window).
   */
  verificationFailingThreshold: z.coerce.number().int().min(1).max(1_000_000).default(20),
  verificationFailingWindow: duration.default(300_000).refine((ms) => ms >= 1000, "must be at least 1s"),
  /** Rows the retention cleaner changes per transaction (it yields to delivery between batches). */
  retentionBatchSize: z.coerce.number().int().min(1).max(10_000).default(500),
  /**
   * Rejected inbound requests kept per bucket (the newest; older ones are trimmed as new ones are
   * recorded), so a stranger posting forged requests cannot fill the disk within the retention days.
   */
  rejectionsKept: z.coerce.number().int().min(10).max(1_000_000).default(1000),
  resendWindow: duration.default(600_000),
  /** How often the server pings each agent; one missed in two intervals drops the connection. */
  agentHeartbeat: duration.default(15_000).refine((ms) => ms >= 50, "must be at least 50ms"),
  /** How often a live tail (Server-Sent Events) sends a comment line, so proxies keep an idle stream open. */
  streamHeartbeat: duration.default(15_000).refine((ms) => ms >= 50, "must be at least 50ms"),
  /**
   * Port of the agents' gRPC listener (same host, same TLS pair as the API); unset: no gRPC
   * listener, agents connect over WebSocket only. A port of its own rather than HTTP/2 on the API
   * port: the API is HTTP/1.1 (Fastify), and sharing would mean ALPN negotiation plus h2c on
   * plaintext, for no gain an agent can see.
   */
  grpcPort: z.coerce.number().int().min(0).max(65535).optional(),
  vaultMaxValueLength: z.coerce.number().int().min(1).max(1_000_000).default(2000),
  templateOutputLimit: z.coerce.number().int().min(1024).default(2 * 1024 * 1024),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** Unset: pretty on a terminal, JSON lines otherwise (decided by the logger, which sees stdout). */
  logFormat: z.enum(["pretty", "json"]).optional(),
  shutdownGrace: duration.default(30_000),
  // Hostile clients (issue 9): every incoming request is bounded in time, connections are capped.
  /** The whole incoming request, headers and body, must arrive within this (Node's `requestTimeout`). */
  inboundRequestTimeout: duration.default(30_000).refine((ms) => ms > 0 && ms <= 600_000, "must be between 1ms and 10m"),
  /** The headers must arrive within this (never more than `inboundRequestTimeout`). */
  inboundHeadersTimeout: duration.default(10_000).refine((ms) => ms > 0, "must be more than 0"),
  /** A body that sends nothing for this long is cut off. */
  inboundBodyIdleTimeout: duration.default(10_000).refine((ms) => ms > 0, "must be more than 0"),
  /** An idle keep-alive connection is closed after this (above common load balancers' 60 s). */
  keepAliveTimeout: duration.default(72_000).refine((ms) => ms > 0, "must be more than 0"),
  /** Open connections at most, all clients together; past it new connections are closed at once. */
  maxConnections: z.coerce.number().int().min(1).default(4096),
  /** Open connections at most from one client address (0: no cap); `--trusted-proxies` are exempt. */
  maxConnectionsPerIp: z.coerce.number().int().min(0).default(256),
  /** The web console at `/console` and the customer portal at `/portal` (issue 13). */
  console: bool.default(true),
  /** How long a console sign-in lasts; the API token itself never reaches browser storage. */
  consoleSessionTtl: duration.default(3_600_000).refine((ms) => ms >= 1000 && ms <= 86_400_000, "must be between 1s and 24h"),
  /** Origins allowed to embed `/portal` in an iframe (CSP `frame-ancestors`); none by default. */
  portalFrameAncestors: list.default([]).refine((items) => items.every((o) => /^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/.test(o)), "must be origins like https://app.example.com"),
  // Tracing (issue 12): off unless an OTLP/HTTP endpoint is given; the standard OTEL_* variables
  // are honoured so a deployment configured for other services needs nothing new.
  /** OTLP/HTTP base URL (`/v1/traces` is appended), as `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  otlpEndpoint: z.string().url().regex(/^https?:\/\//, "must be an http(s) URL").optional(),
  /** The full traces URL, as `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (wins over `otlpEndpoint`). */
  otlpTracesEndpoint: z.string().url().regex(/^https?:\/\//, "must be an http(s) URL").optional(),
  otelServiceName: z.string().min(1).max(256).default("hookwarden"),
  /** `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`: no tracing even with an endpoint. */
  otelDisabled: bool.default(false),
  /** How long finished spans wait to be exported together (the BatchSpanProcessor's delay). */
  otlpExportDelay: duration.default(5_000).refine((ms) => ms >= 1 && ms <= 600_000, "must be between 1ms and 10m"),
  /** The portal's branding: the name in its header, its header colour, and a PNG/SVG/JPEG logo file (≤ 256 KB). */
  portalBrandName: z.string().min(1).max(64).optional(),
  portalBrandColor: z.string().regex(/^#[0-9a-fA-F]{6}$/, "must be a colour like #12324f").optional(),
  portalLogo: z.string().min(1).max(4096).optional(),
});

export type ConfigInput = z.input<typeof schema>;

export interface Config extends Readonly<Omit<z.output<typeof schema>, "masterKey" | "masterKeyPrevious" | "adminToken" | "retention" | "retentionDays">> {
  /** Retention in ms (issue 11): `--retention`, else `--retention-days`, else 90 days. */
  readonly retention: number;
  /** The same in whole days, rounded up: the default `retentionDays` of a new bucket. */
  readonly retentionDays: number;
  readonly masterKey: SecretValue | undefined;
  /** Older master keys (comma-separated base64), readable during and after a rotation. */
  readonly masterKeyPrevious: SecretValue | undefined;
  readonly adminToken: SecretValue | undefined;
  /** How long a claimed job stays invisible to other workers: the attempt timeout plus margin. */
  readonly leaseDuration: number;
  /** Where spans are exported (OTLP/HTTP JSON); undefined: tracing is off and costs nothing. */
  readonly otlpTracesUrl: string | undefined;
}

const ENV: Record<string, keyof ConfigInput> = {
  HOOKWARDEN_HOST: "host",
  HOOKWARDEN_CONSOLE: "console",
  HOOKWARDEN_CONSOLE_SESSION_TTL: "consoleSessionTtl",
  HOOKWARDEN_PORTAL_FRAME_ANCESTORS: "portalFrameAncestors",
  HOOKWARDEN_PORTAL_BRAND_NAME: "portalBrandName",
  HOOKWARDEN_PORTAL_BRAND_COLOR: "portalBrandColor",
  HOOKWARDEN_PORTAL_LOGO: "portalLogo",
  HOOKWARDEN_PORT: "port",
  HOOKWARDEN_ROLE: "role",
  HOOKWARDEN_DATA_DIR: "dataDir",
  HOOKWARDEN_DATABASE_URL: "databaseUrl",
  HOOKWARDEN_DATABASE_SCHEMA: "databaseSchema",
  HOOKWARDEN_MASTER_KEY: "masterKey",
  HOOKWARDEN_MASTER_KEY_PREVIOUS: "masterKeyPrevious",
  HOOKWARDEN_ADMIN_TOKEN: "adminToken",
  HOOKWARDEN_ALLOW_SECRET_REVEAL: "allowSecretReveal",
  HOOKWARDEN_ALLOW_PRIVATE_NETWORKS: "allowPrivateNetworks",
  HOOKWARDEN_RETRY_SCHEDULE: "retrySchedule",
  HOOKWARDEN_REQUEST_TIMEOUT: "requestTimeout",
  HOOKWARDEN_ROTATION_OVERLAP: "rotationOverlap",
  HOOKWARDEN_DISABLE_AFTER: "disableAfter",
  HOOKWARDEN_CIRCUIT_BREAKER_THRESHOLD: "circuitBreakerThreshold",
  HOOKWARDEN_CIRCUIT_BREAKER_COOLDOWN: "circuitBreakerCooldown",
  HOOKWARDEN_MAX_PAYLOAD_SIZE: "maxPayloadSize",
  HOOKWARDEN_RESPONSE_BODY_LIMIT: "responseBodyLimit",
  HOOKWARDEN_DELIVERY_CONCURRENCY: "deliveryConcurrency",
  HOOKWARDEN_ENDPOINT_CONCURRENCY: "endpointConcurrency",
  HOOKWARDEN_POLL_INTERVAL: "pollInterval",
  HOOKWARDEN_IDEMPOTENCY_TTL: "idempotencyTtl",
  HOOKWARDEN_VAULT_MAX_VALUE_LENGTH: "vaultMaxValueLength",
  HOOKWARDEN_TRUSTED_PROXIES: "trustedProxies",
  HOOKWARDEN_UNKNOWN_INPUT_STATUS: "unknownInputStatus",
  HOOKWARDEN_PUBLIC_URL: "publicUrl",
  HOOKWARDEN_TLS_CERT: "tlsCert",
  HOOKWARDEN_TLS_KEY: "tlsKey",
  HOOKWARDEN_RETENTION: "retention",
  HOOKWARDEN_RETENTION_DAYS: "retentionDays",
  HOOKWARDEN_RETENTION_BATCH_SIZE: "retentionBatchSize",
  HOOKWARDEN_REJECTIONS_KEPT: "rejectionsKept",
  HOOKWARDEN_RETENTION_INTERVAL: "retentionInterval",
  HOOKWARDEN_VERIFICATION_FAILING_THRESHOLD: "verificationFailingThreshold",
  HOOKWARDEN_VERIFICATION_FAILING_WINDOW: "verificationFailingWindow",
  HOOKWARDEN_RESEND_WINDOW: "resendWindow",
  HOOKWARDEN_AGENT_HEARTBEAT: "agentHeartbeat",
  HOOKWARDEN_STREAM_HEARTBEAT: "streamHeartbeat",
  HOOKWARDEN_GRPC_PORT: "grpcPort",
  HOOKWARDEN_TEMPLATE_OUTPUT_LIMIT: "templateOutputLimit",
  HOOKWARDEN_LOG_LEVEL: "logLevel",
  HOOKWARDEN_GROUP_COMMIT: "groupCommit",
  HOOKWARDEN_DIRECT_HAND_OFF: "directHandOff",
  HOOKWARDEN_DELIVERY_CACHE: "deliveryCache",
  HOOKWARDEN_PREPARED_STATEMENTS: "preparedStatements",
  HOOKWARDEN_LOG_FORMAT: "logFormat",
  HOOKWARDEN_SHUTDOWN_GRACE: "shutdownGrace",
  HOOKWARDEN_INBOUND_REQUEST_TIMEOUT: "inboundRequestTimeout",
  HOOKWARDEN_INBOUND_HEADERS_TIMEOUT: "inboundHeadersTimeout",
  HOOKWARDEN_INBOUND_BODY_IDLE_TIMEOUT: "inboundBodyIdleTimeout",
  HOOKWARDEN_KEEP_ALIVE_TIMEOUT: "keepAliveTimeout",
  HOOKWARDEN_MAX_CONNECTIONS: "maxConnections",
  HOOKWARDEN_MAX_CONNECTIONS_PER_IP: "maxConnectionsPerIp",
  OTEL_EXPORTER_OTLP_ENDPOINT: "otlpEndpoint",
  HOOKWARDEN_OTLP_ENDPOINT: "otlpEndpoint",
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "otlpTracesEndpoint",
  OTEL_SERVICE_NAME: "otelServiceName",
  OTEL_SDK_DISABLED: "otelDisabled",
  HOOKWARDEN_OTLP_EXPORT_DELAY: "otlpExportDelay",
};

export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Compiles flags, environment and defaults (in that order of precedence) into one frozen
 * `Config`. This is the only place that reads `process.env`.
 *
 * @example
 * const config = loadConfig({ port: 0, retrySchedule: "0s,1s" }, {});
 */
export function loadConfig(flags: Partial<ConfigInput> = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const raw: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(ENV)) {
    const v = env[name];
    // Blank counts as unset: `HOOKWARDEN_PORT=" "` would otherwise coerce to port 0 (a random port).
    if (v !== undefined && v.trim() !== "") raw[key] = v;
  }
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) raw[k] = v;
  const parsed = schema
    .refine((c) => (c.tlsCert === undefined) === (c.tlsKey === undefined), { message: "give both --tls-cert and --tls-key, or neither", path: ["tlsKey"] })
    // Both listen on --host: the second bind would fail as "in use" by another program.
    .refine((c) => c.grpcPort === undefined || c.grpcPort === 0 || c.grpcPort !== c.port, { message: "must differ from --port (the API's port): agents' gRPC has a port of its own", path: ["grpcPort"] })
    .safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".") || "config"}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
  }
  const { masterKey, masterKeyPrevious, adminToken, retention: retentionMs, retentionDays: legacyDays, ...rest } = parsed.data;
  const retention = retentionMs ?? (legacyDays ?? DEFAULT_RETENTION_DAYS) * DAY_MS;
  return Object.freeze({
    ...rest,
    retention,
    retentionDays: Math.max(1, Math.ceil(retention / DAY_MS)),
    allowPrivateNetworks: Object.freeze([...rest.allowPrivateNetworks]) as string[],
    trustedProxies: Object.freeze([...rest.trustedProxies]) as string[],
    retrySchedule: Object.freeze([...rest.retrySchedule]) as number[],
    masterKey: masterKey === undefined ? undefined : new SecretValue(masterKey),
    masterKeyPrevious: masterKeyPrevious === undefined ? undefined : new SecretValue(masterKeyPrevious),
    adminToken: adminToken === undefined ? undefined : new SecretValue(adminToken),
    leaseDuration: rest.requestTimeout + 10_000,
    otlpTracesUrl: tracesUrl(rest, env),
  });
}

/** OTLP spec: a signal-specific endpoint is used as is; the base endpoint gets `v1/traces` appended. */
function tracesUrl(c: { otlpEndpoint?: string | undefined; otlpTracesEndpoint?: string | undefined; otelDisabled: boolean }, env: NodeJS.ProcessEnv): string | undefined {
  if (c.otelDisabled || env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === "none") return undefined;
  if (c.otlpTracesEndpoint !== undefined) return c.otlpTracesEndpoint;
  if (c.otlpEndpoint === undefined) return undefined;
  return `${c.otlpEndpoint.replace(/\/+$/, "")}/v1/traces`;
}

/**
 * A secret a one-off command takes from the environment (never from argv, where `ps` shows it),
 * e.g. `HOOKWARDEN_DECRYPT_KEY` for `hookwarden decrypt`.
 */
export function envSecret(name: `HOOKWARDEN_${string}`, env: NodeJS.ProcessEnv = process.env): SecretValue | undefined {
  const v = env[name];
  return v === undefined || v === "" ? undefined : new SecretValue(v);
}
