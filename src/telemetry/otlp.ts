import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider, type IdGenerator } from '@opentelemetry/sdk-trace';
import { newSpanId, newTraceId } from '../http/trace-context.ts';
import type { RequestTracer, SpanEnd, SpanStart } from './tracer.ts';

/** Longest one export (with its retries) may take. */
export const EXPORT_TIMEOUT_MS = 3000;

export interface OtlpOptions {
  /** OTEL_EXPORTER_OTLP_ENDPOINT: the receiver's base URL; spans go to `<endpoint>/v1/traces`. */
  endpoint: string;
  /** Called when an export fails (the gateway keeps serving; spans are dropped). */
  onError?: (err: Error) => void;
  /** For tests: export sooner than the 5 s default. */
  scheduledDelayMillis?: number;
  serviceName?: string;
  serviceVersion?: string;
}

/**
 * One SERVER span per request, exported over OTLP/HTTP (JSON/protobuf as the exporter
 * chooses; the standard OTEL_EXPORTER_OTLP_* variables for headers, timeout and compression
 * apply) with the OpenTelemetry JS SDK. The span is created when the exchange ends, with the
 * start time and ids the request had from the start: the span id was already sent upstream
 * as the parent in `traceparent`, so the SDK is handed those ids instead of minting its own.
 */
export function createOtlpTracer(options: OtlpOptions): RequestTracer {
  // The ids the next startSpan() must use (set and cleared synchronously around the call).
  let nextTraceId: string | undefined;
  let nextSpanId: string | undefined;
  const idGenerator: IdGenerator = {
    generateTraceId: () => nextTraceId ?? newTraceId(),
    generateSpanId: () => nextSpanId ?? newSpanId(),
  };
  // A batch gets EXPORT_TIMEOUT_MS (retries included), so a dead receiver delays shutdown by at
  // most that much: the drain must still end before the container's stop timeout.
  const exporter = new OTLPTraceExporter({ url: options.endpoint.replace(/\/+$/, '') + '/v1/traces', timeoutMillis: EXPORT_TIMEOUT_MS });
  const exportBatch = exporter.export.bind(exporter);
  exporter.export = (spans, done) =>
    exportBatch(spans, (result) => {
      if (result.error) options.onError?.(result.error);
      done(result);
    });
  const provider = new TracerProvider({
    idGenerator,
    resource: resourceFromAttributes({
      'service.name': options.serviceName ?? process.env['OTEL_SERVICE_NAME'] ?? 'packagento-gate',
      ...(options.serviceVersion ? { 'service.version': options.serviceVersion } : {}),
    }),
    spanProcessors: [
      new BatchSpanProcessor({
        exporter,
        maxQueueSize: 4096,
        ...(options.scheduledDelayMillis !== undefined ? { scheduledDelayMillis: options.scheduledDelayMillis } : {}),
      }),
    ],
  });
  const tracer = provider.getTracer('packagento-gate');

  return {
    spanId: newSpanId,
    record(start: SpanStart, end: SpanEnd) {
      let parent: Context = ROOT_CONTEXT;
      if (start.parentSpanId !== undefined) {
        parent = trace.setSpanContext(ROOT_CONTEXT, {
          traceId: start.traceId,
          spanId: start.parentSpanId,
          traceFlags: parseInt(start.flags, 16) || 0,
          isRemote: true,
        });
      }
      nextTraceId = start.traceId;
      nextSpanId = start.spanId;
      let span;
      try {
        span = tracer.startSpan(
          end.route ?? end.method,
          {
            kind: SpanKind.SERVER,
            startTime: start.startTime,
            attributes: {
              'http.request.method': end.method,
              'http.response.status_code': end.status,
              ...(end.route !== undefined ? { 'http.route': end.route } : {}),
              ...(end.action !== undefined ? { 'packagento.action': end.action } : {}),
              'packagento.decision.result': end.result,
              'packagento.decision_id': end.decisionId,
              'packagento.request_id': end.requestId,
            },
          },
          parent,
        );
      } finally {
        nextTraceId = undefined;
        nextSpanId = undefined;
      }
      if (end.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    },
    shutdown: async () => {
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<void>((ok) => {
        timer = setTimeout(ok, EXPORT_TIMEOUT_MS + 500);
        timer.unref();
      });
      await Promise.race([provider.shutdown().catch((err: unknown) => options.onError?.(err as Error)), bound]);
      clearTimeout(timer);
    },
  };
}
