/**
 * One span per request, exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set
 * (src/telemetry/otlp.ts). Without it there is no tracer at all: the pipeline generates
 * ids itself and nothing else runs on the hot path.
 */
export interface SpanEnd {
  method: string;
  /** Route id (`METHOD pattern`) or undefined when no route matched. */
  route: string | undefined;
  action: string | undefined;
  result: 'allow' | 'deny';
  status: number;
  requestId: string;
  decisionId: string;
}

export interface SpanStart {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  flags: string;
  /** Epoch milliseconds with a fraction (performance.timeOrigin + performance.now()). */
  startTime: number;
}

export interface RequestTracer {
  /** A new span id for the gateway's span (the one sent upstream as the parent). */
  spanId(): string;
  /** Records a finished request as one span. */
  record(start: SpanStart, end: SpanEnd): void;
  /** Sends what is buffered and stops (on shutdown). */
  shutdown(): Promise<void>;
}
