import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";

/** A span as an OTLP/HTTP JSON export request carries it, decoded (attributes as a plain map). */
export interface ExportedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  attributes: Record<string, string | number | boolean>;
  /** OTLP StatusCode: 0 unset, 1 ok, 2 error. */
  statusCode: number;
  resource: Record<string, string | number | boolean>;
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;

type AnyValue = { stringValue?: string; boolValue?: boolean; intValue?: number | string; doubleValue?: number };
type KeyValue = { key: string; value: AnyValue };

/**
 * OTLP/JSON (OpenTelemetry Protocol spec, "JSON Protobuf Encoding"): ids are hex strings, not
 * base64; enums are integers; 64-bit integers may be numbers or decimal strings. Anything else is
 * refused, as a collector would refuse it.
 */
function value(v: AnyValue): string | number | boolean {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) {
    if (typeof v.intValue === "string" && !/^-?\d+$/.test(v.intValue)) throw new Error(`intValue ${v.intValue} is not a decimal integer`);
    return Number(v.intValue);
  }
  if (v.doubleValue !== undefined) return v.doubleValue;
  throw new Error(`unsupported AnyValue ${JSON.stringify(v)}`);
}

function attrs(list: KeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list ?? []) out[kv.key] = value(kv.value);
  return out;
}

export function decodeExportRequest(body: unknown): ExportedSpan[] {
  const spans: ExportedSpan[] = [];
  const req = body as { resourceSpans?: { resource?: { attributes?: KeyValue[] }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[] };
  if (!Array.isArray(req.resourceSpans)) throw new Error("not an ExportTraceServiceRequest: no resourceSpans");
  for (const rs of req.resourceSpans) {
    const resource = attrs(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        const traceId = String(s.traceId).toLowerCase();
        const spanId = String(s.spanId).toLowerCase();
        const parent = s.parentSpanId === undefined || s.parentSpanId === "" ? undefined : String(s.parentSpanId).toLowerCase();
        if (!HEX32.test(traceId) || !HEX16.test(spanId) || (parent !== undefined && !HEX16.test(parent))) throw new Error(`ids are not OTLP/JSON hex: ${JSON.stringify(s)}`);
        if (typeof s.kind !== "number") throw new Error("kind must be an integer enum");
        spans.push({
          traceId,
          spanId,
          parentSpanId: parent,
          name: String(s.name),
          kind: s.kind,
          attributes: attrs(s.attributes as KeyValue[] | undefined),
          statusCode: Number((s.status as { code?: number } | undefined)?.code ?? 0),
          resource,
        });
      }
    }
  }
  return spans;
}

/**
 * An OTLP/HTTP collector on 127.0.0.1: accepts `POST /v1/traces` in JSON (gzip or not), decodes
 * every span, answers 200 with an empty ExportTraceServiceResponse. Keeps the raw bodies too, so a
 * test can look for a secret in what was exported.
 */
export class OtlpReceiver {
  readonly spans: ExportedSpan[] = [];
  readonly raw: string[] = [];
  readonly errors: string[] = [];
  #server: Server;
  url = "";

  constructor() {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        try {
          if (req.method !== "POST" || req.url !== "/v1/traces") throw new Error(`unexpected ${req.method} ${req.url}`);
          if (!String(req.headers["content-type"]).startsWith("application/json")) throw new Error(`content-type ${req.headers["content-type"]}`);
          let body = Buffer.concat(chunks);
          if (req.headers["content-encoding"] === "gzip") body = gunzipSync(body);
          const text = body.toString("utf8");
          this.raw.push(text);
          this.spans.push(...decodeExportRequest(JSON.parse(text)));
          res.writeHead(200, { "content-type": "application/json" });
          res.end("{}");
        } catch (err) {
          this.errors.push((err as Error).message);
          res.writeHead(400, { "content-type": "application/json" });
          res.end(JSON.stringify({ code: 3, message: (err as Error).message }));
        }
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  /** Resolves with the first span matching `pred` once exported (the bound turns a hang into a failure). */
  async span(pred: (s: ExportedSpan) => boolean, timeoutMs = 20_000): Promise<ExportedSpan> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.spans.find(pred);
      if (hit) return hit;
      if (this.errors.length > 0) throw new Error(`the collector refused an export: ${this.errors.join("; ")}`);
      if (Date.now() > until) throw new Error(`no such span; got ${JSON.stringify(this.spans.map((s) => [s.name, s.attributes]))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
