import { EventEmitter } from "node:events";

export type AttemptOutcome = "success" | "failure";

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
  "endpoint:circuit-opened": { endpointId: string; until: number; failures: number };
  "endpoint:disabled": { endpointId: string; reason: string };
  /** A bucket's URL output: the same breaker and automatic disabling as endpoints. */
  "output:circuit-opened": { outputId: string; until: number; failures: number };
  "output:disabled": { outputId: string; reason: string };
  /** A success ended a failure streak (an open circuit closes, its parked backlog is due again). */
  "endpoint:recovered": { endpointId: string };
  "output:recovered": { outputId: string };
}

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
