import type { ErrorCode } from "../errors/index.js";

/**
 * Credentials of a broker destination, revealed from the application's vault for one delivery.
 * The endpoint names the secrets (`auth: {type: "basic", username, passwordSecret}` or
 * `{type: "bearer", tokenSecret}`); URLs never carry them.
 */
export interface BrokerCredentials {
  username?: string;
  password?: string;
  token?: string;
}

/** One message to hand to a destination, already signed (Standard Webhooks) by the engine. */
export interface DestinationRequest {
  /** The endpoint's URL; its scheme selected the kind. */
  url: string;
  /** `webhook-id`: the message id, stable across attempts, for consumers to deduplicate. */
  id: string;
  /** `webhook-timestamp`, seconds. */
  timestamp: number;
  eventType: string;
  contentType: string;
  /** `webhook-id`, `webhook-timestamp`, `webhook-signature`, `content-type`, custom headers… */
  headers: Record<string, string>;
  /** The exact bytes the signature covers. */
  body: string;
  credentials: BrokerCredentials | undefined;
  timeoutMs: number;
  signal?: AbortSignal;
}

/**
 * What became of one delivery. Every failure follows the endpoint's retry schedule, exactly like
 * an HTTP failure (attempts, breaker, auto-disable and events are shared); `errorCode` is stable
 * so operators can alert on it.
 */
export interface DestinationOutcome {
  ok: boolean;
  errorCode: ErrorCode | null;
  /** Why it failed, without secrets. */
  errorDetail: string | null;
  /** What the broker confirmed (kept as the attempt's `response`). */
  response: string;
  durationMs: number;
}

/**
 * A kind of destination the engine can deliver to, selected by the endpoint URL's scheme. The
 * engine knows only this interface; each kind lives in its own folder and is registered at
 * start-up by the composition root (`server/`).
 */
export interface DestinationKind {
  /** Short name, for logs and the bench (`amqp`, `nats`, `redis-stream`). */
  readonly name: string;
  /** URL schemes, with the colon (`amqp:`). */
  readonly schemes: readonly string[];
  /** Publishes one message and waits for the broker's confirmation; never throws. */
  deliver(req: DestinationRequest): Promise<DestinationOutcome>;
  /** Closes every pooled connection (shutdown). */
  close(): Promise<void>;
}
