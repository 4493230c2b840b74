import { formatPath, type Path, type YamlSource } from './yaml-source.ts';
import { isAction, NO_TARGET, TARGET_ROLES, type Action } from '../domain.ts';
import type { Target } from '../policy/decision-table.ts';
import type { TableInput } from './fixture-schema.ts';
import { ANONYMOUS } from './world-env.ts';
import type { World } from './world.ts';

/** What a case expects: a decision (`deny` = 403 or 404 for requests), or an exact status. */
import { FixtureError, type ActionCase } from './fixture-types.ts';

/** The world a fixture declares, and the cases its tables expand to, checked name by name. */

/** What a world declares, for checking the names cases use. */
export interface WorldIndex {
  users: Set<string>;
  tokens: Map<string, { workspace: string; project: string }>;
  workspaces: Set<string>;
  /** project → workspace */
  projects: Map<string, string>;
}

export function indexWorld(file: string, src: YamlSource, world: World): WorldIndex {
  const fail = (path: Path, reason: string) => new FixtureError(file, src.lineOf(['world', ...path]), `world.${formatPath(path)}: ${reason}`);
  const users = new Set(Object.keys(world.users ?? {}));
  const workspaces = new Set<string>();
  const projects = new Map<string, string>();
  for (const [ws, w] of Object.entries(world.workspaces ?? {})) {
    workspaces.add(ws);
    const members = Object.entries(w.members ?? {});
    if (!members.some(([, r]) => r === 'owner')) throw fail(['workspaces', ws], 'a workspace needs at least one owner');
    for (const [u] of members) users.add(u);
    for (const [p, proj] of Object.entries(w.projects ?? {})) {
      if (projects.has(p)) throw fail(['workspaces', ws, 'projects', p], `project "${p}" is also in workspace "${projects.get(p)}"; project names are unique`);
      projects.set(p, ws);
      for (const g of Object.keys(proj?.guests ?? {})) users.add(g);
    }
  }
  const projectRef = (path: Path, ref: string) => {
    const [ws, p] = ref.split('/') as [string, string];
    if (projects.get(p) !== ws) throw fail(path, `no project ${ref} in this world`);
    return { workspace: ws, project: p };
  };
  const tokens = new Map<string, { workspace: string; project: string }>();
  for (const [t, spec] of Object.entries(world.tokens ?? {})) {
    tokens.set(t, projectRef(['tokens', t, 'project'], spec.project));
    users.add(spec.minted_by);
  }
  for (const [i, inv] of Object.entries(world.invites ?? {})) {
    if ((inv.workspace === undefined) === (inv.project === undefined)) throw fail(['invites', i], 'give exactly one of workspace or project');
    if (inv.workspace !== undefined && !workspaces.has(inv.workspace)) throw fail(['invites', i, 'workspace'], `no workspace "${inv.workspace}" in this world`);
    if (inv.project !== undefined) {
      projectRef(['invites', i, 'project'], inv.project);
      if (inv.role !== 'developer' && inv.role !== 'viewer') throw fail(['invites', i, 'role'], 'a project-guest invite is for developer or viewer');
    }
    users.add(inv.invited_by);
  }
  for (const t of tokens.keys()) {
    if (users.has(t)) throw fail(['tokens', t], `"${t}" names both a user and a token`);
  }
  if (users.has(ANONYMOUS) || tokens.has(ANONYMOUS)) throw fail([], `"${ANONYMOUS}" is reserved for requests without credentials`);
  return { users, tokens, workspaces, projects };
}

export interface Scope {
  workspace: string;
  project: string | undefined;
}

export function resolveScope(
  file: string,
  src: YamlSource,
  path: Path,
  index: WorldIndex,
  input: { workspace?: string | undefined; project?: string | undefined },
): Scope {
  if ((input.workspace === undefined) === (input.project === undefined)) {
    throw new FixtureError(file, src.lineOf(path), `${formatPath(path)}: give exactly one of workspace or project`);
  }
  if (input.workspace !== undefined) {
    if (!index.workspaces.has(input.workspace)) {
      throw new FixtureError(file, src.lineOf([...path, 'workspace']), `${formatPath(path)}.workspace: no workspace "${input.workspace}" in the world`);
    }
    return { workspace: input.workspace, project: undefined };
  }
  const [ws, p] = input.project!.split('/') as [string, string];
  // A project of another workspace is allowed on purpose (cross-workspace cases); unknown names are typos.
  if (!index.workspaces.has(ws) || !index.projects.has(p)) {
    const missing = !index.workspaces.has(ws) ? `no workspace "${ws}"` : `no project "${p}"`;
    throw new FixtureError(file, src.lineOf([...path, 'project']), `${formatPath(path)}.project: ${missing} in the world`);
  }
  return { workspace: ws, project: p };
}

export function checkPrincipal(file: string, src: YamlSource, path: Path, index: WorldIndex, as: string | undefined): void {
  if (as === undefined || as === ANONYMOUS || index.users.has(as) || index.tokens.has(as)) return;
  throw new FixtureError(file, src.lineOf(path), `${formatPath(path)}: "${as}" is not a user or token of the world (or "${ANONYMOUS}")`);
}

/** `member:invite@owner` → one key; `member:invite` → one key per target role; `token:read` → `token:read@-`. */
export function expandSelector(selector: string): { action: Action; target: Target }[] | string {
  const [action, target] = selector.split('@') as [string, string | undefined];
  if (!isAction(action)) return `unknown action "${action}"`;
  const targets = (TARGET_ROLES[action] ?? []) as readonly string[];
  if (target === undefined) {
    return targets.length === 0 ? [{ action, target: NO_TARGET }] : targets.map((t) => ({ action, target: t as Target }));
  }
  if (targets.length === 0) return `${action} has no target role`;
  if (!targets.includes(target)) return `${action} takes a target role among ${targets.join(', ')}`;
  return [{ action, target: target as Target }];
}

export const keyOf = (action: Action, target: Target) => (target === NO_TARGET ? action : `${action}@${target}`);

export function expandTable(file: string, src: YamlSource, ti: number, table: TableInput, index: WorldIndex): ActionCase[] {
  const path: Path = ['tables', ti];
  const scope = resolveScope(file, src, path, index, table);
  const fail = (p: Path, reason: string) => new FixtureError(file, src.lineOf(p), `${formatPath(p)}: ${reason}`);
  const keys = new Map<string, { action: Action; target: Target }>();
  table.actions.forEach((selector, i) => {
    const expanded = expandSelector(selector);
    if (typeof expanded === 'string') throw fail([...path, 'actions', i], expanded);
    for (const e of expanded) {
      const k = keyOf(e.action, e.target);
      if (keys.has(k)) throw fail([...path, 'actions', i], `${k} is listed twice`);
      keys.set(k, e);
    }
  });
  const label = table.name ?? `table ${ti + 1}`;
  const cases: ActionCase[] = [];
  for (const [as, allowed] of Object.entries(table.allow)) {
    checkPrincipal(file, src, [...path, 'allow', as], index, as);
    const allowSet = new Set<string>();
    allowed.forEach((selector, i) => {
      const expanded = expandSelector(selector);
      if (typeof expanded === 'string') throw fail([...path, 'allow', as, i], expanded);
      for (const e of expanded) {
        const k = keyOf(e.action, e.target);
        if (!keys.has(k)) throw fail([...path, 'allow', as, i], `${k} is not among this table's actions`);
        allowSet.add(k);
      }
    });
    const line = src.keyLineOf([...path, 'allow'], as) ?? 0;
    for (const [k, { action, target }] of keys) {
      cases.push({
        kind: 'action',
        file,
        line,
        name: `${label}: ${as} ${k}`,
        as: as === ANONYMOUS ? undefined : as,
        expect: allowSet.has(k) ? 'allow' : 'deny',
        action,
        target,
        ...scope,
      });
    }
  }
  return cases;
}

