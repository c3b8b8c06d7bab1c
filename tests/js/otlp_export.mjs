// Exports spans, log records and metrics with upstream OpenTelemetry JS to the receiver and
// prints, as JSON on stdout, what each exporter reported. Configured only by the standard
// variables (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS) plus SPANS (default 25),
// LOGS (default 15), IDENTICAL_LOGS (records of one message in one millisecond, default 0) and
// TRACES_PROTOCOL (`json` or `proto`, default json).
import { SeverityNumber } from "@opentelemetry/api-logs";
import { OTLPLogExporter } from "@opentelemetry/exporter-logs-otlp-http";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { OTLPTraceExporter as JsonTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as ProtoTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchLogRecordProcessor, LoggerProvider } from "@opentelemetry/sdk-logs";
import { MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";

const spans = Number(process.env.SPANS ?? 25);
const logs = Number(process.env.LOGS ?? 15);
const identicalLogs = Number(process.env.IDENTICAL_LOGS ?? 0);
const resource = resourceFromAttributes({ "service.name": "js-otlp-driver", "session.id": "js-session-1" });
const report = {};

// Keeps what the exporter itself answered for each export: code 0 success, 1 failure, the HTTP
// status and the error message.
function recording(signal, exporter) {
  report[signal] = { results: [], flushError: null };
  const export_ = exporter.export.bind(exporter);
  exporter.export = (items, done) => export_(items, (result) => {
    report[signal].results.push({ code: result.code, status: result.error?.code ?? null, error: result.error ? String(result.error.message ?? result.error) : null });
    done(result);
  });
  return exporter;
}

// Shutting down exports what is pending once; a failed export may also reject it.
async function flushed(signal, provider) {
  try { await provider.shutdown(); } catch (error) { report[signal].flushError = String(error?.message ?? error); }
}

const traceExporter = process.env.TRACES_PROTOCOL === "proto" ? new ProtoTraceExporter() : new JsonTraceExporter();
const tracerProvider = new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(recording("traces", traceExporter))] });
const tracer = tracerProvider.getTracer("js-driver");
for (let i = 0; i < spans; i++) tracer.startSpan(`Client.call${i % 5}`, { attributes: { index: i } }).end();
await flushed("traces", tracerProvider);

const loggerProvider = new LoggerProvider({ resource, processors: [new BatchLogRecordProcessor({ exporter: recording("logs", new OTLPLogExporter()) })] });
const logger = loggerProvider.getLogger("js-driver");
for (let i = 0; i < logs; i++) logger.emit({ severityNumber: SeverityNumber.INFO, severityText: "INFO", body: `log ${i}`, attributes: { index: i } });
// Records stamped in whole milliseconds (as a logging bridge passing Date.now() does): two of the
// same message in one millisecond are identical, and are still two events.
const stamped = Date.now();
for (let i = 0; i < identicalLogs; i++) logger.emit({ severityNumber: SeverityNumber.WARN, severityText: "WARN", body: "cache miss", timestamp: stamped, observedTimestamp: stamped });
await flushed("logs", loggerProvider);

const reader = new PeriodicExportingMetricReader({ exporter: recording("metrics", new OTLPMetricExporter()), exportIntervalMillis: 60_000 });
const meterProvider = new MeterProvider({ resource, readers: [reader] });
const meter = meterProvider.getMeter("js-driver");
meter.createCounter("js.calls").add(7, { function: "Client.call0" });
const histogram = meter.createHistogram("js.duration", { unit: "ms" });
for (const value of [1, 2, 3, 10]) histogram.record(value);
await flushed("metrics", meterProvider);

process.stdout.write(JSON.stringify(report));
