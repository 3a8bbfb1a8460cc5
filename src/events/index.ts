import { EventEmitter } from "node:events";

export type AttemptOutcome = "success" | "failure";

/** An endpoint as events name it (its row may be gone: `endpoint:deleted`). */
export interface EndpointRef {
  orgId: string;
  appId: string;
  endpointId: string;
  endpointUid: string | null;
}

/** What business code announces. Metrics, logs and (later) the dashboard subscribe. */
export interface LifecycleEvents {
  "message:published": { orgId: string; appId: string; msgId: string; endpoints: number };
  "delivery:attempted": {
    orgId: string;
    appId: string;
    endpointId: string;
    msgId: string;
    attemptId: string;
    outcome: AttemptOutcome;
    statusCode: number;
    errorCode: string | null;
    durationMs: number;
    /** Milliseconds from publish to this attempt's end; only set on the first attempt. */
    sincePublishMs: number | null;
    willRetry: boolean;
    tlsVerify: boolean;
    /** Attempts made before this one (0 for the first); absent for a synchronous call (never retried). */
    attempt?: number;
  };
  "forward:attempted": {
    orgId: string;
    bucketId: string;
    outputId: string;
    requestId: string;
    outcome: AttemptOutcome;
    statusCode: number;
    errorCode: string | null;
    durationMs: number;
    willRetry: boolean;
  };
  /** `status`: the static answer sent, or `null` in wait mode (the destination's answer is relayed). */
  "ingress:accepted": { orgId: string; bucketId: string; inputId: string; size: number; durationMs: number; status: number | null };
  "ingress:duplicate": { orgId: string; bucketId: string; inputId: string; status: number };
  "ingress:rejected": { orgId: string | null; bucketId: string | null; inputId: string; status: number; code: string };
  /** Changes made through the API (src/endpoints); operational webhooks subscribe. */
  "endpoint:created": EndpointRef;
  "endpoint:updated": EndpointRef;
  "endpoint:deleted": EndpointRef;
  /** An endpoint was created with, or switched to, `tlsVerify: false`. */
  "endpoint:tls-verify-disabled": EndpointRef;
  /** A signing secret was replaced; `graceUntil`: the old one still signs until then (epoch ms). */
  "secret:rotated": { orgId: string; appId: string; endpointId: string; endpointUid: string | null; kind: "endpoint"; graceUntil: number | null };
  "endpoint:circuit-opened": { endpointId: string; until: number; failures: number };
  /** `trigger`: automatic (failures, 410 Gone) or manual (disabled through the API), as Svix says. */
  "endpoint:disabled": { endpointId: string; reason: string; trigger: "automatic" | "manual" };
  /** A bucket output disabled automatically: a `410 Gone` answer, or failing for `disableAfter`. */
  "output:disabled": { orgId: string; bucketId: string; outputId: string; reason: string };
  /** A bucket's URL output: the same breaker and automatic disabling as endpoints. */
  "output:circuit-opened": { outputId: string; until: number; failures: number };
  /** A success ended a failure streak (an open circuit closes, its parked backlog is due again). */
  "endpoint:recovered": { endpointId: string };
  "output:recovered": { outputId: string };
  /**
   * Incident response (src/incident). `actor`: the token name (`tok_… name`) or `cli:<os user>`.
   * Emitted in the process that made the change (a CLI step: its own process; the audit log
   * records it for everyone). Never carries a secret value.
   */
  "incident:paused": { orgId: string; scope: IncidentScopeKind; targetId: string; actor: string; at: number };
  "incident:resumed": { orgId: string; scope: IncidentScopeKind; targetId: string; actor: string; at: number };
  "incident:rotated": { orgId: string; appId: string | null; endpoints: number; tokens: number; overlapMs: number; actor: string; at: number };
}

/** What an incident step applies to: one application, one bucket, or a whole organisation. */
export type IncidentScopeKind = "app" | "bucket" | "org";

/**
 * A typed event emitter. Listeners run synchronously; one that throws is reported and does not
 * break the emitter or the business code that emitted.
 */
export class EventBus {
  readonly #emitter = new EventEmitter({ captureRejections: false });
  readonly #onError: (err: unknown, event: string) => void;

  constructor(onError: (err: unknown, event: string) => void = () => {}) {
    this.#onError = onError;
    this.#emitter.setMaxListeners(100);
  }

  on<K extends keyof LifecycleEvents>(event: K, listener: (payload: LifecycleEvents[K]) => void): () => void {
    const wrapped = (payload: LifecycleEvents[K]) => {
      try {
        listener(payload);
      } catch (err) {
        this.#onError(err, event);
      }
    };
    this.#emitter.on(event, wrapped);
    return () => this.#emitter.off(event, wrapped);
  }

  emit<K extends keyof LifecycleEvents>(event: K, payload: LifecycleEvents[K]): void {
    this.#emitter.emit(event, payload);
  }
}
