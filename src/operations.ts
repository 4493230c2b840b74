import type { Context } from 'hono';
import type { Db } from './db/client.ts';
import { schemaIsCurrent } from './db/migrations.ts';
import { canonicalizeTarget } from './http/canonical-path.ts';
import { problem, problemResponse } from './http/problem.ts';
import type { PolicyStore } from './policy/store.ts';
import type { Env } from './http/hono-env.ts';
import type { GateMetrics } from './telemetry/metrics.ts';

export interface OperationsDeps {
  db: Db;
  policy: PolicyStore;
  metrics?: GateMetrics;
  /** The OpenAPI document of the native API (built once, on first request). */
  openapi?: () => unknown;
  /** True once a shutdown started: readyz answers 503 so load balancers stop routing here. */
  draining?: () => boolean;
}

export type OperationsHandler = (c: Context<Env>, deps: OperationsDeps) => Promise<Response>;

/** `/_gate/*`: operations, answered by the gateway, never forwarded; undefined for any other target. */
export function operations(rawTarget: string): OperationsHandler | undefined {
  // Cheap test first: this runs for every request, before the gate canonicalizes the path.
  if (!rawTarget.startsWith('/_gate/')) return undefined;
  const canonical = canonicalizeTarget(rawTarget);
  if (!canonical.ok || canonical.segments[0] !== '_gate') return undefined;
  const name = canonical.segments.length === 2 ? canonical.segments[1] : undefined;
  switch (name) {
    case 'healthz':
      return async (c) => c.json({ status: 'ok' });
    case 'readyz':
      return readyz;
    case 'metrics':
      return metrics;
    case 'openapi.json':
      return async (c, deps) => (deps.openapi ? c.json(deps.openapi() as object) : problemResponse(problem('not_found', 'no OpenAPI document')));
    default:
      return async () => problemResponse(problem('not_found', 'no such operations endpoint'));
  }
}

async function readyz(c: Context<Env>, deps: OperationsDeps): Promise<Response> {
  const checks: Record<string, string> = {};
  if (deps.draining?.()) checks['lifecycle'] = 'draining';
  try {
    if (!(await schemaIsCurrent(deps.db))) checks['database'] = 'schema not migrated';
    else {
      // Ready means the database takes writes too: not locked by another process past a second,
      // and still the file at the configured path (not deleted or replaced under us).
      const health = await deps.db.writeHealth();
      checks['database'] = health.ok ? 'ok' : `cannot take writes: ${health.reason}`;
    }
  } catch {
    checks['database'] = 'unreachable';
  }
  checks['policy'] = deps.policy.current ? 'ok' : 'not loaded';
  const ready = Object.values(checks).every((v) => v === 'ok');
  // pid: which process answered (one of several behind a load balancer, or a worker of serve --workers).
  return c.json({ status: ready ? 'ready' : 'not ready', checks, policy_revision: deps.policy.current.revision, pid: process.pid }, ready ? 200 : 503);
}

/** Prometheus text exposition (CONTRACT §8). */
async function metrics(_c: Context<Env>, deps: OperationsDeps): Promise<Response> {
  if (!deps.metrics) return problemResponse(problem('not_found', 'metrics are off'));
  const text = await deps.metrics.render();
  return new Response(text, { status: 200, headers: { 'content-type': deps.metrics.contentType, 'cache-control': 'no-store' } });
}
