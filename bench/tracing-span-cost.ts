import { Tracing, SpanKind } from "../src/tracing/index.js";
import type { SpanExporter } from "@opentelemetry/sdk-trace-base";
let exported = 0;
const exporter: SpanExporter = { export(spans, done) { exported += spans.length; done({ code: 0 }); }, shutdown: async () => {} };
const tracing = new Tracing({ otelServiceName: "bench", otlpExportDelay: 50 }, exporter);
const N = 50_000;
const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
for (let round = 0; round < 3; round++) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const s = tracing.start("hookwarden.attempt", SpanKind.CLIENT, parent, { "hookwarden.message.id": "msg_x", "hookwarden.endpoint.id": "ep_x", "hookwarden.attempt.number": 1 });
    s.end({ "hookwarden.attempt.id": "atmpt_x", "http.response.status_code": 200 }, null);
  }
  const ns = Number(process.hrtime.bigint() - t0);
  await tracing.flush();
  console.log(JSON.stringify({ bench: "tracing.span", round, spans: N, usPerSpan: +(ns / N / 1000).toFixed(2), exported }));
}
await tracing.shutdown();
