/**
 * The finite domain every decision is made over: roles, subjects and actions.
 *
 * This is the one list of actions in the code. The route map, the policy, the
 * fixtures and the decision table are all checked against it.
 */

/** Workspace roles, highest rank first. */
export const WORKSPACE_ROLES = ['owner', 'admin', 'developer', 'billing', 'viewer'] as const;
export type WorkspaceRole = (typeof WORKSPACE_ROLES)[number];

/** Project-guest roles (a grant on one project, without workspace membership). */
export const GUEST_ROLES = ['developer', 'viewer'] as const;
export type GuestRole = (typeof GUEST_ROLES)[number];

/**
 * Casbin subjects: what a principal is *in the context of one request*.
 * `guest:*` only when the caller is a guest of the request's project,
 * `token` only for a project token on its own project, `none` when nothing applies.
 */
export const SUBJECTS = [
  'owner',
  'admin',
  'developer',
  'billing',
  'viewer',
  'guest:developer',
  'guest:viewer',
  'token',
  'none',
] as const;
export type Subject = (typeof SUBJECTS)[number];

/** Every action the gateway knows, in a stable order. */
export const ACTIONS = [
  'workspace:read',
  'workspace:switch',
  'member:list',
  'member:invite',
  'member:update-role',
  'member:remove',
  'member:leave',
  'invite:list',
  'invite:revoke',
  'invite:reissue',
  'project:list',
  'project:read',
  'project:create',
  'project:update',
  'project:delete',
  'guest:list',
  'guest:invite',
  'guest:remove',
  'token:list',
  'token:read',
  'token:create',
  'token:rotate',
  'token:revoke',
  'licence:list',
  'licence:refund',
  'subscription:cancel',
  'package:install',
] as const;
export type Action = (typeof ACTIONS)[number];

/**
 * Actions whose decision depends on a target role (the role granted, or the
 * role of the member acted on), and the target roles each can take.
 */
export const TARGET_ROLES: Partial<Record<Action, readonly (WorkspaceRole | GuestRole)[]>> = {
  'member:invite': WORKSPACE_ROLES,
  'member:update-role': WORKSPACE_ROLES,
  'member:remove': WORKSPACE_ROLES,
  'member:leave': WORKSPACE_ROLES,
  'invite:reissue': WORKSPACE_ROLES,
  'guest:invite': GUEST_ROLES,
};

/** The value passed to Casbin as the target when an action has none. */
export const NO_TARGET = '-';

export function isAction(value: string): value is Action {
  return (ACTIONS as readonly string[]).includes(value);
}

export function isWorkspaceRole(value: unknown): value is WorkspaceRole {
  return typeof value === 'string' && (WORKSPACE_ROLES as readonly string[]).includes(value);
}

export function isGuestRole(value: unknown): value is GuestRole {
  return typeof value === 'string' && (GUEST_ROLES as readonly string[]).includes(value);
}

export function isSubject(value: string): value is Subject {
  return (SUBJECTS as readonly string[]).includes(value);
}

export function hasTarget(action: Action): boolean {
  return TARGET_ROLES[action] !== undefined;
}

/** Rank of a workspace role: owner = 5 … viewer = 1. Used for display order only, never to decide. */
export function rankOf(role: WorkspaceRole): number {
  return WORKSPACE_ROLES.length - WORKSPACE_ROLES.indexOf(role);
}

/**
 * Emails compare case-insensitively in ASCII only (CONTRACT §3): `A`–`Z` fold to
 * `a`–`z` and nothing else folds. `toLowerCase()` applies full Unicode rules, under
 * which the Kelvin sign U+212A becomes `k` — so `\u212Aate@…` would equal `kate@…`.
 */
export function foldEmail(email: string): string {
  return email.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}
