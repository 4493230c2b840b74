import { headerSafe } from '../http/headers.ts';
import type { Allowed } from './types.ts';
import { principalLabel } from './authenticate.ts';

/**
 * Identity headers for the upstream (CONTRACT §4), for forwarding and forward-auth alike.
 * Every value is header-safe: ids the gateway mints are unreserved characters, and the
 * principal (an opaque user id, CONTRACT §3) is percent-encoded where it needs to be.
 */
export function identityHeaders(outcome: Allowed, requestId: string): Record<string, string> {
  const p = outcome.principal;
  const headers: Record<string, string> = { 'x-packagento-principal': headerSafe(principalLabel(p)) };
  const workspace = p.kind === 'token' ? p.workspaceId : outcome.params['ws'];
  const project = p.kind === 'token' ? p.projectId : outcome.params['p'];
  if (workspace !== undefined) headers['x-packagento-workspace'] = workspace;
  if (project !== undefined) headers['x-packagento-project'] = project;
  headers['x-packagento-roles'] = outcome.subjects.join(',');
  if (outcome.route.action) headers['x-packagento-action'] = outcome.route.action;
  headers['x-packagento-decision-id'] = outcome.decision.decision_id;
  headers['x-packagento-policy-revision'] = outcome.bundle.revision;
  if (outcome.shadowDenied) headers['x-packagento-shadow-decision'] = 'deny';
  headers['x-request-id'] = requestId;
  return headers;
}
