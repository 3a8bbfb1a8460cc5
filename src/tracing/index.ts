import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Span, type Tracer } from "@opentelemetry/api";
import { ExportResultCode, parseTraceParent, type ExportResult } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor, type ReadableSpan, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";
import type { Config } from "../config/index.js";
import type { Logger } from "../logger/index.js";

export { SpanKind };

/** Longest `traceparent` looked at: version 00 is 55 characters; a future version may append fields. */
const MAX_TRACEPARENT = 512;
const EXPORT_FAILURE_LOG_MS = 60_000;

/** One span in flight: what to propagate (`traceparent`) and how to finish it. */
export interface TraceSpan {
  /** W3C `traceparent` of this span, sent to destinations and stored with queued work. */
  readonly traceparent: string;
  /**
   * Ends the span with its outcome. `errorCode` set (a stable `E_*` code) marks it failed.
   * Attributes are ids, counts and status codes only: never headers, URLs or payloads.
   */
  end(attributes?: Attributes, errorCode?: string | null): void;
}

/**
 * Issue 12: OpenTelemetry traces of publish → attempt and ingress → forward, exported over
 * OTLP/HTTP (JSON) by a BatchSpanProcessor. Created only when an endpoint is configured: with
 * tracing off the context holds `undefined` and the hot paths skip every call (one property read).
 *
 * No context manager and no global registration: each span's parent is passed explicitly (the
 * incoming `traceparent`, or the one stored with a message or inbound request), which is what
 * queued delivery needs anyway, since an attempt runs long after the publish's async context ended.
 */
export class Tracing {
  readonly #provider: BasicTracerProvider;
  readonly #tracer: Tracer;

  constructor(config: Pick<Config, "otelServiceName" | "otlpExportDelay">, exporter: SpanExporter) {
    this.#provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.otelServiceName, [ATTR_SERVICE_VERSION]: "0.1.0" }),
      spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: config.otlpExportDelay, maxQueueSize: 8192, maxExportBatchSize: 512 })],
    });
    this.#tracer = this.#provider.getTracer("hookwarden");
  }

  /**
   * Starts a span whose parent is `parent` (a `traceparent` header value from a caller, or stored
   * with queued work). A missing, malformed or over-long value starts a new trace: a caller's
   * header never fails a request.
   */
  start(name: string, kind: SpanKind, parent: string | null | undefined, attributes: Attributes): TraceSpan {
    const parentCtx = typeof parent === "string" && parent.length <= MAX_TRACEPARENT ? parseTraceParent(parent.trim()) : null;
    const ctx = parentCtx ? trace.setSpanContext(ROOT_CONTEXT, parentCtx) : ROOT_CONTEXT;
    const span = this.#tracer.startSpan(name, { kind, attributes }, ctx);
    return handle(span);
  }

  /** Exports what is buffered now (tests, shutdown). */
  flush(): Promise<void> {
    return this.#provider.forceFlush();
  }

  /** Exports what is left and stops; later spans are dropped. */
  shutdown(): Promise<void> {
    return this.#provider.shutdown();
  }
}

/**
 * A request header's value when it was sent once. W3C Trace Context §3.2: several `traceparent`
 * headers are not one context, so they start a new trace (Node joins repeats with ", ", which
 * fails the parse the same way).
 */
export function firstHeader(v: string | string[] | undefined): string | undefined {
  return typeof v === "string" ? v : undefined;
}

function handle(span: Span): TraceSpan {
  const sc = span.spanContext();
  const traceparent = `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, "0")}`;
  return {
    traceparent,
    end(attributes, errorCode) {
      if (attributes) span.setAttributes(attributes);
      if (errorCode) {
        span.setAttribute("error.type", errorCode);
        span.setStatus({ code: SpanStatusCode.ERROR, message: errorCode });
      }
      span.end();
    },
  };
}

/** Tracing for this config, or `undefined` when no OTLP endpoint is configured (tracing off). */
export function createTracing(config: Config, logger: Logger): Tracing | undefined {
  const url = config.otlpTracesUrl;
  if (url === undefined) return undefined;
  // OTEL_EXPORTER_OTLP_HEADERS (a collector's credentials) is read by the exporter itself and
  // never logged here: the log line names the collector's origin only.
  const exporter = new LoggedExporter(new OTLPTraceExporter({ url, timeoutMillis: 10_000 }), logger);
  logger.info({ collector: new URL(url).origin, serviceName: config.otelServiceName }, "exporting traces over OTLP/HTTP");
  return new Tracing(config, exporter);
}

/** A failed export is logged at most once a minute: a collector that is down must not flood the log. */
class LoggedExporter implements SpanExporter {
  readonly #inner: SpanExporter;
  readonly #logger: Logger;
  #lastLogged = 0;
  #failed = 0;

  constructor(inner: SpanExporter, logger: Logger) {
    this.#inner = inner;
    this.#logger = logger;
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.#inner.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS) {
        this.#failed += spans.length;
        const now = Date.now();
        if (now - this.#lastLogged >= EXPORT_FAILURE_LOG_MS) {
          this.#lastLogged = now;
          this.#logger.warn({ droppedSpans: this.#failed, reason: result.error?.message.slice(0, 200) }, "could not export traces to the OTLP collector; spans dropped");
          this.#failed = 0;
        }
      }
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush?.() ?? Promise.resolve();
  }
}
