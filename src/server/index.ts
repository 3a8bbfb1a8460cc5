import type { FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import { buildApi, readTls } from "../api/server.js";
import { FunctionRunner, type FunctionLimits } from "../functions/runner.js";
import { bootstrapAdmin } from "../auth/bootstrap.js";
import { systemClock, type Clock } from "../clock/index.js";
import type { Config } from "../config/index.js";
import type { Context } from "../context/index.js";
import { HttpSender } from "../delivery/http-sender.js";
import { AddressPolicy } from "../net/ssrf.js";
import { DeliveryWorker } from "../engine/worker.js";
import { DestinationKinds } from "../engine/kind.js";
import { endpointKind } from "../delivery/endpoint-kind.js";
import { brokerDestinations } from "../destinations/index.js";
import { EventBus } from "../events/index.js";
import { logLifecycle } from "../observability/log-events.js";
import { AuditLog } from "../audit/index.js";
import { createLogger, type Logger } from "../logger/index.js";
import { Publisher } from "../messages/publisher.js";
import { createMetrics } from "../metrics/index.js";
import { releaseAllLeases } from "../queue/release-jobs.js";
import { openStore } from "../store/index.js";
import { isStorageFault, STORAGE_RETRY_AFTER_S } from "../store/errors.js";
import type { HookwardenError } from "../errors/index.js";
import { loadKeyring } from "../vault/keyring.js";
import type { SecretValue } from "../vault/secret-value.js";
import { lockDataDir } from "./lock.js";
import { AgentHub } from "../agents/hub.js";
import { forwardKind } from "../ingress/forward-kind.js";
import { agentRelay, resendToAgents } from "../agents/forward.js";
import { listenGrpc, type GrpcAgentListener } from "../agents/grpc/listener.js";
import { HeldRequests } from "../ingress/held-requests.js";
import { jobLifetimeMs } from "../engine/retry-schedule.js";
import { Intake } from "../ingress/intake.js";
import { InputCache } from "../ingress/lookup.js";
import { OutputCache } from "../ingress/output-cache.js";
import { RejectionLog } from "../ingress/rejections.js";
import { PauseSet } from "../incident/pauses.js";
import { ConfigError } from "../config/index.js";
import { createTracing } from "../tracing/index.js";
import { OperationalWebhooks } from "../operational/index.js";
import { RetentionCleaner } from "../retention/index.js";
import { JobQueue } from "../queue/job-queue.js";

export interface Hookwarden {
  readonly url: string;
  readonly ctx: Context;
  readonly api: FastifyInstance;
  readonly worker: DeliveryWorker;
  readonly publisher: Publisher;
  readonly registry: Registry;
  readonly agents: AgentHub;
  /** `grpc(s)://host:port` when agents may also connect over gRPC (`--grpc-port`). */
  readonly grpcUrl: string | undefined;
  readonly audit: AuditLog;
  /** Incident pauses as this node sees them (src/incident). */
  readonly pauses: PauseSet;
  /** Turns lifecycle events into the organisations' operational webhooks (src/operational). */
  readonly operational: OperationalWebhooks;
  /** The admin token generated on first start; `undefined` on every later start. */
  readonly bootstrapToken: SecretValue | undefined;
  stop(): Promise<void>;
}

export interface StartOptions {
  clock?: Clock;
  logger?: Logger;
  /** Jitter source for retries and deferrals (tests pass a constant). */
  random?: () => number;
  /** Per-call caps of functions (defaults: DEFAULT_FUNCTION_LIMITS). */
  functionLimits?: Partial<FunctionLimits>;
}

/**
 * Composition root: opens storage, loads the master key, wires publisher → queue → worker →
 * recorder, starts the HTTP API and the worker. `stop()` shuts down in the reverse order and
 * gives unfinished work back.
 */
export async function startHookwarden(config: Config, opts: StartOptions = {}): Promise<Hookwarden> {
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? createLogger({ level: config.logLevel, format: config.logFormat });
  const keyring = loadKeyring(config, logger);
  const tls = readTls(config); // before anything is opened: a bad path is a one-line error
  if (config.role !== "all" && !config.databaseUrl) throw new ConfigError(roleNeedsPostgres(config.role));
  // `api`: no delivery worker here (and so no direct hand-off); `worker`: no API on the port.
  const runsWorker = config.role !== "api";
  const servesApi = config.role !== "worker";
  const unlock = config.databaseUrl ? () => {} : lockDataDir(config.dataDir);
  let store;
  try {
    store = await openStore(config, logger);
  } catch (err) {
    unlock();
    throw err;
  }
  const events = new EventBus((err, event) => logger.error({ err, event }, "event listener failed"));
  const tracing = createTracing(config, logger);
  const ctx: Context = Object.freeze({ config, clock, logger, store, queue: new JobQueue(store), keyring, events, tracing });
  logLifecycle(events, logger);

  // A crashed predecessor's leases. On a full disk this write fails: start anyway (reads are served,
  // writes answer 507) and retry in the background; until then those jobs wait for their lease end.
  let leasesReleased = store.capabilities.sharedByNodes;
  const releaseLeases = async (except?: string): Promise<void> => {
    try {
      const released = await releaseAllLeases(store.db, clock.now(), except);
      leasesReleased = true;
      if (released > 0) logger.warn({ released }, "released deliveries left leased by a previous run that did not stop cleanly");
    } catch (err) {
      if (!isStorageFault(err)) throw err;
      logger.warn({ code: (err as HookwardenError).code }, "could not release a previous run's leases yet (storage is failing); retrying in the background");
    }
  };
  if (!leasesReleased) await releaseLeases();
  const boot = await bootstrapAdmin(store.db, config, clock.now());

  const registry = createMetrics(events, { db: store.db, clock });
  const policy = new AddressPolicy(config.allowPrivateNetworks);
  const connectTimeoutMs = Math.min(10_000, config.requestTimeout);
  const sender = new HttpSender({ policy, responseBodyLimit: config.responseBodyLimit, connectTimeoutMs });
  // Broker destinations share the HTTP sender's SSRF policy.
  const destinations = brokerDestinations({ policy, connectTimeoutMs });
  const outputs = new OutputCache(ctx);
  // Sandbox threads start on the first call (a server that never runs a function pays nothing).
  const functions = new FunctionRunner(opts.functionLimits ? { limits: opts.functionLimits } : {});
  const pauses = new PauseSet(store.db, (err) => logger.warn({ err }, "could not refresh the incident pauses; keeping the last known set"));
  await pauses.start(config.pollInterval);
  // The engine's destination kinds: endpoints here, bucket outputs once the agents' relay exists.
  const kinds = new DestinationKinds().register(endpointKind(ctx, sender, { destinations, functions }));
  // An API node runs no worker, but sends the ephemeral requests it alone holds (`heldOnly`).
  const worker = new DeliveryWorker(ctx, kinds, { paused: pauses, heldOnly: !runsWorker, ...(opts.random ? { random: opts.random } : {}) });
  const held = new HeldRequests(worker.id, clock, jobLifetimeMs(config));
  // The direct hand-off (an optimisation with an off switch: `--direct-hand-off false`) lets this
  // node's worker start new jobs without a claim; on an API node they reach workers through the queue.
  const handOff = runsWorker && config.directHandOff;
  const publisher = new Publisher(ctx, handOff ? worker.handOff : undefined);
  const operational = new OperationalWebhooks(ctx, publisher);
  const agents = new AgentHub(ctx, {
    heartbeatMs: config.agentHeartbeat,
    onConnect: (bucketIds) => {
      resendToAgents(ctx, bucketIds).then(
        () => worker.wake(),
        (err: unknown) => logger.error({ err }, "could not schedule the resend to a reconnected agent"),
      );
    },
  });
  const relay = agentRelay(ctx, agents, functions);
  kinds.register(forwardKind(ctx, sender, { outputs, functions, relay, held }));
  const ingress = {
    intake: new Intake(ctx, handOff ? worker.handOff : undefined, outputs, held),
    inputs: new InputCache(ctx),
    outputs,
    rejections: new RejectionLog(ctx),
    held,
    worker,
    sender,
    agents: relay,
    functions,
    paused: pauses,
  };
  let url = "";
  const audit = new AuditLog(store, logger);
  const api = await buildApi(ctx, { audit, publisher, registry, sender, ingress, publicUrl: () => config.publicUrl?.replace(/\/+$/, "") ?? url, agents, tls, functions, pauses });
  if (servesApi) agents.attach(api.server);
  await api.listen({ host: config.host, port: config.port });
  let grpc: GrpcAgentListener | undefined;
  try {
    grpc = config.grpcPort === undefined ? undefined : await listenGrpc(ctx, agents, { host: config.host, port: config.grpcPort, tls });
  } catch (err) {
    await api.close();
    throw err;
  }
  // On an API node the worker claims only the jobs of ephemeral requests this process holds.
  await worker.start();
  const leaseRetry = setInterval(() => {
    if (leasesReleased) return clearInterval(leaseRetry);
    releaseLeases(worker.id).then(
      () => {
        if (leasesReleased) worker.wake();
      },
      (err: unknown) => logger.error({ err }, "releasing a previous run's leases failed"),
    );
  }, STORAGE_RETRY_AFTER_S * 1000);
  leaseRetry.unref();
  if (leasesReleased) clearInterval(leaseRetry);

  const address = api.server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
  url = `${config.tlsCert ? "https" : "http"}://${host.includes(":") ? `[${host}]` : host}:${port}`;

  const retention = new RetentionCleaner(ctx);
  retention.start();

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await retention.stop();
      clearInterval(leaseRetry);
      pauses.stop();
      await agents.close();
      await grpc?.close();
      await api.close();
      await audit.flush();
      operational.stop();
      await operational.drain();
      await publisher.drain();
      await ingress.intake.drain();
      await worker.stop(config.shutdownGrace);
      await ingress.rejections.flush();
      await sender.close();
      await destinations.close();
      await functions.close();
      // After the worker: the last attempts' spans are exported before the process exits.
      await tracing?.shutdown().catch((err: unknown) => logger.warn({ err }, "could not export the last traces"));
      await store.close();
      unlock();
    })());

  return { url, ctx, api, worker, publisher, registry, agents, grpcUrl: grpc?.url, audit, pauses, operational, bootstrapToken: boot?.generated ? boot.token : undefined, stop };
}

/**
 * `--role api|worker` on embedded SQLite: refused before anything is opened. One process owns a
 * SQLite data directory (it holds its lock), so an API process and a worker process could never
 * share it; the roles scale apart only over PostgreSQL.
 */
function roleNeedsPostgres(role: string): string {
  return `--role ${role} needs PostgreSQL (--database-url / HOOKWARDEN_DATABASE_URL): embedded SQLite is one process that holds its data directory's lock, so an API process and a worker process cannot share it; use --role all (the default) with SQLite`;
}
