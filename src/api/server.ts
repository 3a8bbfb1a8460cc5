import { readFileSync } from "node:fs";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import type { Context } from "../context/index.js";
import { ConfigError, type Config } from "../config/index.js";
import type { HttpSender } from "../delivery/http-sender.js";
import type { Publisher } from "../messages/publisher.js";
import { applicationRoutes } from "./applications/index.js";
import { ApplicationCache } from "../applications/cache.js";
import { attemptRoutes } from "./attempts/index.js";
import { appScopeGuard, bearerAuth } from "./auth.js";
import { authenticationRoutes } from "./authentication/index.js";
import { findApplication } from "../applications/index.js";
import { endpointRoutes } from "./endpoints/index.js";
import { endpointRecoveryRoutes } from "./endpoints/recovery.js";
import { endpointOperationalEventRoutes } from "./endpoints/operational-events.js";
import { contractRoutes, installContract } from "./contract/index.js";
import { clientErrorHandler, frameworkErrors, installErrorHandlers } from "./errors.js";
import { guardConnections, timeoutOptions } from "./connection-limits.js";
import { installJsonBody } from "./json-body.js";
import { lazyRequestLoggers } from "./lazy-logger.js";
import { logApiRequests } from "./request-log.js";
import { eventTypeRoutes } from "./event-types/index.js";
import { healthRoutes } from "./health/index.js";
import { messageRoutes } from "./messages/index.js";
import { secretRoutes } from "./secrets/index.js";
import { bucketRoutes } from "./buckets/index.js";
import { bucketStreamRoutes } from "./buckets/stream.js";
import { TailHub } from "../ingress/tail.js";
import { agentTokenRoutes } from "./agent-tokens/index.js";
import { functionRoutes } from "./functions/index.js";
import type { FunctionRunner } from "../functions/runner.js";
import { tokenRoutes } from "./tokens/index.js";
import { auditRoutes } from "./audit/index.js";
import { incidentRoutes } from "./incident/index.js";
import type { PauseSet } from "../incident/pauses.js";
import { operationalWebhookRoutes } from "./operational-webhooks/index.js";
import type { AuditLog } from "../audit/index.js";
import { TokenUse } from "../auth/token-use.js";
import type { AgentHub } from "../agents/hub.js";
import { ingressRoutes, type IngressDeps } from "./inbound/receive.js";
import { consoleRoutes } from "./console/index.js";
import { ConsoleSessions, sessionToken } from "./console/sessions.js";

/** The HTTP edge: Svix-compatible admin API under `/api/v1` plus health and metrics. */
export interface ApiDeps {
  publisher: Publisher;
  registry: Registry;
  sender: HttpSender;
  ingress: IngressDeps;
  /** The base URL providers use to reach `/in/...` (for input URLs in responses). */
  publicUrl: () => string;
  agents: AgentHub;
  audit: AuditLog;
  /** The PEM pair to serve HTTPS with (`readTls`). */
  tls?: { cert: Buffer; key: Buffer } | undefined;
  /** Sandboxed JavaScript (issue 14); the routes under …/function are absent without it. */
  functions?: FunctionRunner;
  /** Incident pauses (src/incident): this node's copy, updated at once by /api/v1/incident. */
  pauses?: PauseSet;
}

export async function buildApi(ctx: Context, deps: ApiDeps): Promise<FastifyInstance> {
  const { tls } = deps;
  const limits = timeoutOptions(ctx.config);
  const app = Fastify({
    // Fastify types an HTTPS instance differently; the routes use nothing that differs.
    ...(tls ? ({ https: { ...tls, ...limits.http } } as object) : {}),
    loggerInstance: ctx.logger.child({ component: "http" }) as FastifyBaseLogger,
    // Fastify's own request lines are off: `logApiRequests` writes one shorter line per API request.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: ctx.config.maxPayloadSize,
    return503OnClosing: true,
    // 512: room for Svix's 256-character uids (find-my-way's default of 100 refused them with 414).
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 512 },
    frameworkErrors,
    clientErrorHandler,
    ...limits,
  });
  lazyRequestLoggers(app);
  // First: every route registered from here on is observed, so the document cannot miss one.
  const contract = installContract(app);
  guardConnections(app, ctx.config, ctx.logger.child({ component: "http" }));
  installErrorHandlers(app);
  logApiRequests(app, ctx.logger);
  healthRoutes(app, ctx, deps.registry);
  contractRoutes(app, contract);
  // A worker node (`--role worker`) answers probes and scrapes only: no API, no /in, no console.
  if (ctx.config.role === "worker") return app;
  const apps = new ApplicationCache(ctx);
  const sessions = ctx.config.console ? new ConsoleSessions(ctx.clock, ctx.config.consoleSessionTtl) : undefined;
  if (sessions) await app.register(async (web) => consoleRoutes(web, ctx, { sessions, secure: tls !== undefined }));
  await app.register(async (api) => {
    const auth = bearerAuth(ctx.store.db, ctx.clock, new TokenUse(ctx.store.db, ctx.logger), sessions && ((req) => sessionToken(sessions, req)));
    api.addHook("onRequest", auth);
    api.addHook("onRequest", appScopeGuard((orgId, idOrUid) => findApplication(ctx, orgId, idOrUid)));
    authenticationRoutes(api, ctx, auth, apps, deps.publicUrl);
    tokenRoutes(api, ctx, auth);
    incidentRoutes(api, ctx, { auth, pauses: deps.pauses });
    auditRoutes(api, ctx, deps.audit);
    installJsonBody(api);
    applicationRoutes(api, ctx, apps);
    eventTypeRoutes(api, ctx);
    endpointRoutes(api, ctx, deps.sender, deps.functions);
    operationalWebhookRoutes(api, ctx);
    endpointRecoveryRoutes(api, ctx);
    endpointOperationalEventRoutes(api, ctx);
    messageRoutes(api, ctx, deps.publisher, apps);
    attemptRoutes(api, ctx);
    secretRoutes(api, ctx);
    agentTokenRoutes(api, ctx, deps.agents);
    if (deps.functions) functionRoutes(api, ctx, deps.functions);
    bucketRoutes(api, ctx, { inputs: deps.ingress.inputs, ...(deps.ingress.outputs ? { outputs: deps.ingress.outputs } : {}), publicUrl: deps.publicUrl });
    // Live tails re-read their bucket as often as the worker looks for due retries (--poll-interval).
    const tail = new TailHub(ctx, { rejections: deps.ingress.rejections, pollMs: ctx.config.pollInterval });
    api.addHook("onClose", async () => tail.close());
    bucketStreamRoutes(api, ctx, { tail, heartbeatMs: ctx.config.streamHeartbeat });
  });
  // Public ingress: raw bodies, its own error handling, no token.
  await app.register(async (pub) => ingressRoutes(pub, ctx, deps.ingress));
  return app;
}

/** The PEM pair named by `--tls-cert`/`--tls-key`, read once at start; a clear error otherwise. */
export function readTls(config: Config): { cert: Buffer; key: Buffer } | undefined {
  const { tlsCert, tlsKey } = config;
  if (tlsCert === undefined || tlsKey === undefined) return undefined;
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new ConfigError(`cannot read the TLS ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  };
  return { cert: read(tlsCert, "certificate"), key: read(tlsKey, "key") };
}

