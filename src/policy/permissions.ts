import { GUEST_ROLES, WORKSPACE_ROLES, type Action, type GuestRole, type Subject, type WorkspaceRole } from '../domain.ts';
import type { DecisionTable } from './decision-table.ts';
import type { Route } from './route-map.ts';

/** Who the caller is, where the question is asked (CONTRACT §4 `permissions`). */
export interface PermissionQuery {
  workspaceRole: WorkspaceRole | undefined;
  /**
   * Workspace level: the caller's best guest role on any project of the workspace, which
   * counts only for the actions of `guests=workspace` routes (as in the gate). Project
   * level: the guest role on that project, which counts for every action.
   */
  guestRole: GuestRole | undefined;
  level: 'workspace' | 'project';
}

export interface Permissions {
  actions: Action[];
  /** The invite role picker: the roles `member:invite` allows the caller to grant. */
  grantable_roles: WorkspaceRole[];
  /** The roles `guest:invite` allows the caller to grant. */
  guest_grantable_roles: GuestRole[];
}

/**
 * What the caller may do, read off the live decision table — the very table every
 * request is decided with, so the Org settings UI cannot disagree with the policy.
 * An action counts when some target allows it (a rank-ruled action: see the role
 * lists), except actions on the caller's own role (`target=self`, e.g. leaving),
 * which count only when allowed for that role.
 */
export function permissionsFor(table: DecisionTable, routes: readonly Route[], q: PermissionQuery): Permissions {
  const member: Subject[] = q.workspaceRole ? [q.workspaceRole] : [];
  const guest: Subject[] = q.guestRole ? [`guest:${q.guestRole}`] : [];
  const all = [...member, ...guest];
  const selfTargeted = new Set<Action>();
  const guestWide = new Set<Action>();
  for (const r of routes) {
    if (!r.action) continue;
    if (r.checks.some((c) => c.action === r.action && c.target === 'self')) selfTargeted.add(r.action);
    if (r.guests === 'workspace') guestWide.add(r.action);
  }
  const subjectsFor = (a: Action) => (q.level === 'project' || guestWide.has(a) ? all : member);
  // Every action the folder declares (its vocabulary), in the table's order.
  const actions = table.vocabulary.actions.filter((a) => {
    const subjects = subjectsFor(a);
    if (selfTargeted.has(a)) return q.workspaceRole !== undefined && table.allows(member, a, q.workspaceRole);
    return table.holds(subjects, a);
  });
  const granting = q.level === 'project' ? all : member;
  return {
    actions,
    grantable_roles: WORKSPACE_ROLES.filter((r) => table.allows(member, 'member:invite', r)),
    guest_grantable_roles: GUEST_ROLES.filter((r) => table.allows(granting, 'guest:invite', r)),
  };
}
