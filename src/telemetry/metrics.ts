import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Prometheus metrics (CONTRACT §8), one Registry per gateway so two gateways in one
 * process (tests, the demo) never share counters.
 *
 * Labels stay bounded: route and action are ids from the policy's route map (a value
 * that does not look like an id — a raw path, a user id with `/` or `@` — becomes
 * "other"), and at most MAX_ROUTE_LABELS distinct ids are kept before new ones fold
 * into "other" too, so a policy reload that renames every route cannot grow the scrape
 * without bound. Status is the HTTP status number; anything else is "other".
 */

/** Decision buckets, in seconds: the decision itself takes tens of microseconds. */
export const DECISION_BUCKETS = [
  0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
];
/** Upstream buckets, in seconds: a millisecond up to the longest upstream timeout. */
export const UPSTREAM_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export const UPSTREAM_ERROR_KINDS = ['connect', 'timeout', 'reset', 'invalid_response', 'aborted', 'other'] as const;
export type UpstreamErrorKind = (typeof UPSTREAM_ERROR_KINDS)[number];

export const POLICY_RELOAD_RESULTS = ['ok', 'rejected', 'unchanged'] as const;
export type PolicyReloadResult = (typeof POLICY_RELOAD_RESULTS)[number];

export const OUTBOX_CHANNELS = ['email', 'webhook'] as const;
export const OUTBOX_RESULTS = ['delivered', 'failed', 'dead'] as const;
export type OutboxChannel = (typeof OUTBOX_CHANNELS)[number];
export type OutboxResult = (typeof OUTBOX_RESULTS)[number];

/** Distinct route (and action) label values kept before new ones become "other". */
export const MAX_ROUTE_LABELS = 512;

export interface RequestLabels {
  /** The route map id, or undefined when no route matched. */
  route: string | undefined;
  action: string | undefined;
  result: 'allow' | 'deny';
  /** What the client got (499 when it went away first). */
  status: number;
}

export interface GateMetrics {
  readonly registry: Registry;
  /** `Content-Type` of `render()`'s text. */
  readonly contentType: string;
  /** One finished exchange: gate_requests_total{route,action,result,status}. */
  request(labels: RequestLabels): void;
  /** The decision's duration (hygiene → decide), in seconds. */
  decision(seconds: number): void;
  /** A forwarded request's upstream time (to the response head), in seconds. */
  upstream(seconds: number): void;
  upstreamError(kind: UpstreamErrorKind): void;
  policyReload(result: PolicyReloadResult): void;
  /** The policy revision in force: gate_policy_info{revision} is 1 for it and absent for any other. */
  policyInfo(revision: string): void;
  /** A write that found the database locked past its timeout (answered 503). */
  dbBusy(): void;
  /** Decision-log lines dropped because the reader was too slow. */
  logDropped(lines?: number): void;
  /** An outbox delivery attempt finished. */
  outboxDelivery(channel: OutboxChannel, result: OutboxResult): void;
  /** Read at each scrape: how many outbox events wait for delivery. */
  outboxPending(read: () => number | Promise<number>): void;
  /** The Prometheus text exposition of every metric. */
  render(): Promise<string>;
}

export interface MetricsOptions {
  /** Default process metrics (CPU, memory, event loop lag, GC, handles): on unless false. */
  processMetrics?: boolean;
}

const ID_LABEL = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

export function createMetrics(options: MetricsOptions = {}): GateMetrics {
  const registry = new Registry();
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const requests = new Counter({
    name: 'gate_requests_total',
    help: 'Requests answered, by route id, action, decision result and the status the client got.',
    labelNames: ['route', 'action', 'result', 'status'] as const,
    registers,
  });
  const decisionSeconds = new Histogram({
    name: 'gate_decision_duration_seconds',
    help: 'Time to decide a request (hygiene, route, authentication, roles, policy), in seconds.',
    buckets: DECISION_BUCKETS,
    registers,
  });
  const upstreamSeconds = new Histogram({
    name: 'gate_upstream_duration_seconds',
    help: 'Time from forwarding a request to the upstream answer head, in seconds.',
    buckets: UPSTREAM_BUCKETS,
    registers,
  });
  const upstreamErrors = new Counter({
    name: 'gate_upstream_errors_total',
    help: 'Forwarded requests that failed upstream, by kind.',
    labelNames: ['kind'] as const,
    registers,
  });
  const reloads = new Counter({
    name: 'gate_policy_reloads_total',
    help: 'Policy reloads (SIGHUP or a file change), by result: ok, rejected (the last good policy stays), unchanged.',
    labelNames: ['result'] as const,
    registers,
  });
  const policyInfo = new Gauge({
    name: 'gate_policy_info',
    help: 'The policy revision in force (always 1).',
    labelNames: ['revision'] as const,
    registers,
  });
  const dbBusy = new Counter({
    name: 'gate_db_busy_total',
    help: 'Writes refused with 503 because the database stayed locked past GATE_DB_WRITE_TIMEOUT_MS.',
    registers,
  });
  const logDropped = new Counter({
    name: 'gate_decision_log_dropped_total',
    help: 'Decision-log lines dropped because the reader was slower than GATE_LOG_BUFFER_BYTES allows.',
    registers,
  });
  let readPending: (() => number | Promise<number>) | undefined;
  new Gauge({
    name: 'gate_outbox_pending',
    help: 'Outbox events waiting for delivery.',
    registers,
    async collect() {
      if (!readPending) return this.set(0);
      try {
        this.set(await readPending());
      } catch {
        // A scrape must not fail because the database is briefly unreadable: report "unknown".
        this.set(Number.NaN);
      }
    },
  });
  const deliveries = new Counter({
    name: 'gate_outbox_deliveries_total',
    help: 'Outbox delivery attempts, by channel and result.',
    labelNames: ['channel', 'result'] as const,
    registers,
  });
  // Every fixed label combination starts at 0, so rate() and absent() work from the first scrape.
  for (const kind of UPSTREAM_ERROR_KINDS) upstreamErrors.inc({ kind }, 0);
  for (const result of POLICY_RELOAD_RESULTS) reloads.inc({ result }, 0);
  for (const channel of OUTBOX_CHANNELS) for (const result of OUTBOX_RESULTS) deliveries.inc({ channel, result }, 0);

  const seen = new Set<string>();
  const idLabel = (value: string | undefined): string => {
    if (value === undefined || value === '') return 'none';
    if (!ID_LABEL.test(value)) return 'other';
    if (!seen.has(value)) {
      if (seen.size >= MAX_ROUTE_LABELS) return 'other';
      seen.add(value);
    }
    return value;
  };
  const statusLabel = (status: number): string => (Number.isInteger(status) && status >= 100 && status <= 599 ? String(status) : 'other');
  let revisionInForce: string | undefined;

  return {
    registry,
    contentType: registry.contentType,
    request(l) {
      requests.inc({ route: idLabel(l.route), action: idLabel(l.action), result: l.result === 'allow' ? 'allow' : 'deny', status: statusLabel(l.status) });
    },
    decision: (s) => decisionSeconds.observe(s),
    upstream: (s) => upstreamSeconds.observe(s),
    upstreamError: (kind) => upstreamErrors.inc({ kind: UPSTREAM_ERROR_KINDS.includes(kind) ? kind : 'other' }),
    policyReload: (result) => reloads.inc({ result: POLICY_RELOAD_RESULTS.includes(result) ? result : 'rejected' }),
    policyInfo(revision) {
      if (revision === revisionInForce) return;
      policyInfo.reset();
      policyInfo.set({ revision: ID_LABEL.test(revision) ? revision : 'other' }, 1);
      revisionInForce = revision;
    },
    dbBusy: () => dbBusy.inc(),
    logDropped: (lines = 1) => logDropped.inc(lines),
    outboxDelivery(channel, result) {
      if (OUTBOX_CHANNELS.includes(channel) && OUTBOX_RESULTS.includes(result)) deliveries.inc({ channel, result });
    },
    outboxPending(read) {
      readPending = read;
    },
    render: () => registry.metrics(),
  };
}
