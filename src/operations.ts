import type { Context } from 'hono';
import type { Db } from './db/client.ts';
import { schemaIsCurrent } from './db/migrations.ts';
import { canonicalizeTarget } from './http/canonical-path.ts';
import { problem, problemResponse } from './http/problem.ts';
import type { PolicyStore } from './policy/store.ts';
import type { Env } from './http/hono-env.ts';

export interface OperationsDeps {
  db: Db;
  policy: PolicyStore;
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
    default:
      return async () => problemResponse(problem('not_found', 'no such operations endpoint'));
  }
}

async function readyz(c: Context<Env>, deps: OperationsDeps): Promise<Response> {
  const checks: Record<string, string> = {};
  try {
    checks['database'] = (await schemaIsCurrent(deps.db)) ? 'ok' : 'schema not migrated';
  } catch {
    checks['database'] = 'unreachable';
  }
  checks['policy'] = deps.policy.current ? 'ok' : 'not loaded';
  const ready = Object.values(checks).every((v) => v === 'ok');
  return c.json({ status: ready ? 'ready' : 'not ready', checks, policy_revision: deps.policy.current.revision }, ready ? 200 : 503);
}
