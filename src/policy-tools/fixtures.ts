import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { NATIVE_TARGET_ROLES, NO_TARGET, type Action, type NativeAction, type Subject } from '../domain.ts';
import type { Vocabulary } from '../policy/vocabulary.ts';
import type { Target } from '../policy/decision-table.ts';
import {
  actionCaseSchema,
  fixtureFileSchema,
  httpCaseSchema,
  tableSchema,
  type HttpCaseInput,
  type TableInput,
} from './fixture-schema.ts';
import type { PolicyBundle } from '../policy/bundle.ts';
import { ANONYMOUS, createWorldEnv, type WorldEnv } from './world-env.ts';
import type { World } from './world.ts';

/** What a case expects: a decision (`deny` = 403 or 404 for requests), or an exact status. */
export type Expect = 'allow' | 'deny' | 400 | 401 | 403 | 404 | 405;

interface CaseBase {
  /** The fixture file, as given on the command line (relative to the working directory). */
  file: string;
  line: number;
  name: string;
  /** A user or token of the world; undefined = no credentials. */
  as: string | undefined;
  expect: Expect;
}

export interface ActionCase extends CaseBase {
  kind: 'action';
  action: Action;
  workspace: string;
  project: string | undefined;
  target: Target;
}

export interface HttpCase extends CaseBase {
  kind: 'http';
  method: string;
  /** The request-target, exactly as written. */
  requestTarget: string;
  body: Record<string, unknown> | undefined;
  headers: [string, string][];
}

export type FixtureCase = ActionCase | HttpCase;

export interface Fixture {
  file: string;
  name: string;
  world: World;
  cases: FixtureCase[];
}

/** A fixture that cannot be loaded; the message starts with `file:line:`. */
export class FixtureError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly reason: string,
  ) {
    super(`${file}${line !== undefined ? `:${line}` : ''}: ${reason}`);
    this.name = 'FixtureError';
  }
}

type Path = readonly (string | number)[];

/** `cases[3].expect` */
function formatPath(path: Path): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/** Line numbers for a parsed YAML document. */
class SourceMap {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /** The line of the node at `path`, or of its nearest ancestor that exists. */
  lineOf(path: Path): number | undefined {
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? this.doc.contents : this.doc.getIn(path.slice(0, n), true);
      const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
      if (range) return this.lines.linePos(range[0]).line;
    }
    return undefined;
  }

  /** The line of `key` itself in the mapping at `path` (a block list value starts on the next line). */
  keyLineOf(path: Path, key: string): number | undefined {
    const map = this.doc.getIn(path, true);
    if (isMap(map)) {
      const pair = map.items.find((p) => isScalar(p.key) && p.key.value === key);
      const range = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
      if (range) return this.lines.linePos(range[0]).line;
    }
    return this.lineOf([...path, key]);
  }
}

function zodFailure(file: string, src: SourceMap, base: Path, error: z.ZodError): FixtureError {
  // An unknown key explains the rest (a misspelt `exepct` also leaves `expect` missing): report it first.
  const issue = error.issues.find((i) => i.code === 'unrecognized_keys') ?? error.issues[0]!;
  const path: Path = [...base, ...(issue.path as (string | number)[])];
  const where = formatPath(path);
  if (issue.code === 'unrecognized_keys') {
    // Point at the unknown key itself.
    const key = issue.keys[0]!;
    return new FixtureError(file, src.lineOf([...path, key]), `${where ? `${where}: ` : ''}unknown key "${key}"`);
  }
  return new FixtureError(file, src.lineOf(path), `${where ? `${where}: ` : ''}${issue.message}`);
}

/** What a world declares, for checking the names cases use. */
interface WorldIndex {
  users: Set<string>;
  tokens: Map<string, { workspace: string; project: string }>;
  workspaces: Set<string>;
  /** project → workspace */
  projects: Map<string, string>;
}

function indexWorld(file: string, src: SourceMap, world: World): WorldIndex {
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

interface Scope {
  workspace: string;
  project: string | undefined;
}

function resolveScope(
  file: string,
  src: SourceMap,
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

function checkPrincipal(file: string, src: SourceMap, path: Path, index: WorldIndex, as: string | undefined): void {
  if (as === undefined || as === ANONYMOUS || index.users.has(as) || index.tokens.has(as)) return;
  throw new FixtureError(file, src.lineOf(path), `${formatPath(path)}: "${as}" is not a user or token of the world (or "${ANONYMOUS}")`);
}

/** `member:invite@owner` → one key; `member:invite` → one key per target role; `token:read` → `token:read@-`. */
function expandSelector(selector: string, names: ActionNames): { action: Action; target: Target }[] | string {
  const [action, target] = selector.split('@') as [string, string | undefined];
  const unknown = names.unknown(action);
  if (unknown !== undefined) return unknown;
  const targets = names.targets(action) ?? [];
  if (target === undefined) {
    return targets.length === 0 ? [{ action, target: NO_TARGET }] : targets.map((t) => ({ action, target: t as Target }));
  }
  if (targets.length === 0) return `${action} has no target role`;
  if (!targets.includes(target)) return `${action} takes a target role among ${targets.join(', ')}`;
  return [{ action, target: target as Target }];
}

const keyOf = (action: Action, target: Target) => (target === NO_TARGET ? action : `${action}@${target}`);

/**
 * What the fixture may name as actions: with the policy's vocabulary, exactly its actions
 * (a misspelt one is refused with the nearest declared name); without one (parsing alone),
 * any resource:verb, with the target roles the product gives its own actions.
 */
interface ActionNames {
  unknown(action: string): string | undefined;
  targets(action: string): readonly string[] | undefined;
}

function actionNames(vocabulary: Vocabulary | undefined): ActionNames {
  if (vocabulary === undefined) return { unknown: () => undefined, targets: (a) => NATIVE_TARGET_ROLES[a as NativeAction] };
  return {
    unknown: (a) => {
      if (vocabulary.has(a)) return undefined;
      const hint = vocabulary.suggest(a);
      return `unknown action "${a}": the policy folder does not declare it${hint ? ` (did you mean "${hint}"?)` : ''}`;
    },
    targets: (a) => vocabulary.targetRoles(a),
  };
}

function expandTable(file: string, src: SourceMap, ti: number, table: TableInput, index: WorldIndex, names: ActionNames): ActionCase[] {
  const path: Path = ['tables', ti];
  const scope = resolveScope(file, src, path, index, table);
  const fail = (p: Path, reason: string) => new FixtureError(file, src.lineOf(p), `${formatPath(p)}: ${reason}`);
  const keys = new Map<string, { action: Action; target: Target }>();
  table.actions.forEach((selector, i) => {
    const expanded = expandSelector(selector, names);
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
      const expanded = expandSelector(selector, names);
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

function defaultHttpName(c: HttpCaseInput): string {
  const body = c.body !== undefined ? ` ${JSON.stringify(c.body)}` : '';
  return `${c.as ?? ANONYMOUS} ${c.request}${body}`;
}

/** Parses YAML with line numbers kept for messages; a syntax error names the file and line. */
function parseYaml(text: string, file: string) {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new FixtureError(file, lines.linePos(e.pos[0]).line, `invalid YAML: ${e.message.split('\n')[0]}`);
  }
  return { doc, src: new SourceMap(doc, lines) };
}

/** Parses one fixture file's text. Throws FixtureError naming the file and line. */
export function parseFixture(text: string, file: string, vocabulary?: Vocabulary): Fixture {
  const names = actionNames(vocabulary);
  const { doc, src } = parseYaml(text, file);
  const data: unknown = doc.toJS({ maxAliasCount: 1000 });
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new FixtureError(file, 1, 'a fixture file is a mapping with name, world and cases or tables');
  }

  // Cases and tables are parsed one by one below (a case with the schema its shape asks for),
  // so a message names the one entry that is wrong rather than a union's every branch.
  const loose = fixtureFileSchema.omit({ cases: true, tables: true }).safeParse(
    Object.fromEntries(Object.entries(data).filter(([k]) => k !== 'cases' && k !== 'tables')),
  );
  if (!loose.success) throw zodFailure(file, src, [], loose.error);
  const raw = data as { cases?: unknown; tables?: unknown };
  if (raw.cases !== undefined && !Array.isArray(raw.cases)) throw new FixtureError(file, src.lineOf(['cases']), 'cases: must be a list');
  if (raw.tables !== undefined && !Array.isArray(raw.tables)) throw new FixtureError(file, src.lineOf(['tables']), 'tables: must be a list');
  const rawCases = (raw.cases ?? []) as unknown[];
  const rawTables = (raw.tables ?? []) as unknown[];
  if (rawCases.length === 0 && rawTables.length === 0) {
    throw new FixtureError(file, 1, 'a fixture file needs at least one entry in cases or tables');
  }

  const world = loose.data.world;
  const index = indexWorld(file, src, world);
  const cases: FixtureCase[] = [];

  rawCases.forEach((rc, i) => {
    const path: Path = ['cases', i];
    const line = src.lineOf(path) ?? 0;
    const isHttp = typeof rc === 'object' && rc !== null && 'request' in rc;
    if (isHttp) {
      const parsed = httpCaseSchema.safeParse(rc);
      if (!parsed.success) throw zodFailure(file, src, path, parsed.error);
      const c = parsed.data;
      checkPrincipal(file, src, [...path, 'as'], index, c.as);
      const space = c.request.indexOf(' ');
      cases.push({
        kind: 'http',
        file,
        line,
        name: c.name ?? defaultHttpName(c),
        as: c.as === ANONYMOUS ? undefined : c.as,
        expect: c.expect,
        method: c.request.slice(0, space),
        requestTarget: c.request.slice(space + 1),
        body: c.body,
        headers: Object.entries(c.headers ?? {}),
      });
      return;
    }
    const parsed = actionCaseSchema.safeParse(rc);
    if (!parsed.success) throw zodFailure(file, src, path, parsed.error);
    const c = parsed.data;
    checkPrincipal(file, src, [...path, 'as'], index, c.as);
    const scope = resolveScope(file, src, path, index, c);
    const unknown = names.unknown(c.action);
    if (unknown !== undefined) throw new FixtureError(file, src.lineOf([...path, 'action']), `${formatPath(path)}.action: ${unknown}`);
    const targets = names.targets(c.action);
    let target: Target = NO_TARGET;
    if (targets !== undefined) {
      if (c.target_role === undefined || !targets!.includes(c.target_role)) {
        throw new FixtureError(file, src.lineOf([...path, 'target_role']), `${formatPath(path)}.target_role: ${c.action} needs a target_role among ${targets!.join(', ')}`);
      }
      target = c.target_role;
    } else if (c.target_role !== undefined) {
      throw new FixtureError(file, src.lineOf([...path, 'target_role']), `${formatPath(path)}.target_role: ${c.action} has no target role`);
    }
    const where = scope.project !== undefined ? `${scope.workspace}/${scope.project}` : scope.workspace;
    cases.push({
      kind: 'action',
      file,
      line,
      name: c.name ?? `${c.as ?? ANONYMOUS} ${keyOf(c.action, target)} on ${where}`,
      as: c.as === ANONYMOUS ? undefined : c.as,
      expect: c.expect,
      action: c.action,
      target,
      ...scope,
    });
  });

  rawTables.forEach((rt, i) => {
    const parsed = tableSchema.safeParse(rt);
    if (!parsed.success) throw zodFailure(file, src, ['tables', i], parsed.error);
    cases.push(...expandTable(file, src, i, parsed.data, index, names));
  });

  return { file, name: loose.data.name, world, cases };
}

/** A world read from a file (a fixture file, or a file with only `world:`), for `explain --world`. */
export interface WorldFile {
  file: string;
  world: World;
  /** The names `as` may take: users and tokens of the world. */
  principals: Set<string>;
}

/** Parses the `world:` of a YAML file (other keys, such as cases, are ignored). */
export function parseWorldFile(text: string, file: string): WorldFile {
  const { doc, src } = parseYaml(text, file);
  const data = doc.toJS({ maxAliasCount: 1000 }) as { world?: unknown } | null;
  if (typeof data !== 'object' || data === null || data.world === undefined) throw new FixtureError(file, 1, 'no world: in this file');
  const parsed = fixtureFileSchema.shape.world.safeParse(data.world);
  if (!parsed.success) throw zodFailure(file, src, ['world'], parsed.error);
  const index = indexWorld(file, src, parsed.data);
  return { file, world: parsed.data, principals: new Set([...index.users, ...index.tokens.keys()]) };
}

/** Reads and parses one fixture file; `file` in messages is the path relative to `cwd`. */
export async function loadFixtureFile(path: string, cwd = process.cwd(), vocabulary?: Vocabulary): Promise<Fixture> {
  const full = resolve(cwd, path);
  const file = relative(cwd, full) || path;
  let text: string;
  try {
    text = await readFile(full, 'utf8');
  } catch (err) {
    throw new FixtureError(file, undefined, `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return parseFixture(text, file, vocabulary);
}

/** Expands folders to the `*.yaml` / `*.yml` files directly in them (sorted); files stay as given. */
export async function resolveFixturePaths(paths: readonly string[], cwd = process.cwd()): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    const full = resolve(cwd, p);
    let isDir = false;
    try {
      isDir = (await stat(full)).isDirectory();
    } catch {
      // Reported by loadFixtureFile as unreadable.
    }
    if (!isDir) {
      out.push(p);
      continue;
    }
    const names = (await readdir(full)).filter((n) => /\.ya?ml$/.test(n) && !n.startsWith('.')).sort();
    out.push(...names.map((n) => join(p, n)));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Running

/** What actually happened to a case. */
export interface CaseOutcome {
  allow: boolean;
  /** 200 for an allow; the problem's status for a deny (403 for a denied action case). */
  status: number;
  code: string;
  subjects: Subject[];
  action: Action | null;
  target_role: string | null;
  detail: string | undefined;
  /** The route a request matched (`METHOD pattern`); null for action cases and unmatched requests. */
  route: string | null;
}

export interface CaseResult {
  case: FixtureCase;
  outcome: CaseOutcome;
  pass: boolean;
  /** `allow`, or `403 forbidden` (requests) / `deny` (actions). */
  actual: string;
  /** One line saying why a failed case failed. */
  message: string | undefined;
  durationMs: number;
}

export interface FixtureResult {
  fixture: Fixture;
  results: CaseResult[];
}

/** `allow` / `deny` for an action case; `allow` or `STATUS code` for a request. */
export function describeOutcome(c: FixtureCase, o: CaseOutcome): string {
  if (o.allow) return 'allow';
  return c.kind === 'action' ? 'deny' : `${o.status} ${o.code}`;
}

export function meetsExpectation(c: FixtureCase, o: CaseOutcome): boolean {
  switch (c.expect) {
    case 'allow':
      return o.allow;
    case 'deny':
      // A request's deny is a decision (403) or the visibility rule (404), not a 400 or 401.
      return !o.allow && (c.kind === 'action' || o.status === 403 || o.status === 404);
    default:
      return !o.allow && o.status === c.expect;
  }
}

function failureMessage(c: FixtureCase, o: CaseOutcome, actual: string): string {
  const roles = o.subjects.length > 0 ? o.subjects.join(', ') : 'none';
  const what = o.action ? `${o.action}${o.target_role ? `@${o.target_role}` : ''}` : 'no action';
  const detail = !o.allow && o.detail ? ` (${o.detail})` : '';
  return `expected ${c.expect}, got ${actual}${detail} [roles: ${roles}; ${what}]`;
}

async function runCase(env: WorldEnv, c: FixtureCase): Promise<CaseOutcome> {
  if (c.kind === 'action') {
    const d = await env.decideAction({ as: c.as, workspace: c.workspace, project: c.project, action: c.action, target: c.target });
    const target_role = c.target === NO_TARGET ? null : c.target;
    if (d.problem) {
      return { allow: false, status: 401, code: d.problem.code, subjects: [], action: c.action, target_role, detail: d.problem.detail, route: null };
    }
    return {
      allow: d.allow,
      status: d.allow ? 200 : 403,
      code: d.allow ? 'ok' : 'forbidden',
      subjects: d.subjects,
      action: c.action,
      target_role,
      detail: undefined,
      route: null,
    };
  }
  const out = await env.request({ as: c.as, method: c.method, target: c.requestTarget, body: c.body, headers: c.headers });
  const d = out.decision;
  return {
    allow: out.allow,
    status: out.allow ? 200 : d.status,
    code: out.allow ? 'ok' : out.problem.code,
    subjects: out.allow ? out.subjects : d.roles,
    action: out.allow ? d.action : ((out.problem.extra?.['action'] as Action | undefined) ?? d.action),
    target_role: out.allow ? d.target_role : ((out.problem.extra?.['target_role'] as string | undefined) ?? d.target_role),
    detail: out.allow ? undefined : out.problem.detail,
    route: d.route,
  };
}

/** Runs one fixture file against a policy bundle: one seeded world, every case through the real decision path. */
export async function runFixture(fixture: Fixture, bundle: PolicyBundle): Promise<FixtureResult> {
  const env = await createWorldEnv(fixture.world, () => bundle);
  const results: CaseResult[] = [];
  try {
    for (const c of fixture.cases) {
      const started = performance.now();
      let outcome: CaseOutcome;
      try {
        outcome = await runCase(env, c);
      } catch (err) {
        const detail = (err as Error).message;
        outcome = { allow: false, status: 500, code: 'internal_error', subjects: [], action: null, target_role: null, detail, route: null };
      }
      const actual = describeOutcome(c, outcome);
      const pass = meetsExpectation(c, outcome);
      results.push({ case: c, outcome, pass, actual, message: pass ? undefined : failureMessage(c, outcome, actual), durationMs: performance.now() - started });
    }
  } finally {
    await env.close();
  }
  return { fixture, results };
}

export async function runFixtures(fixtures: readonly Fixture[], bundle: PolicyBundle): Promise<FixtureResult[]> {
  const out: FixtureResult[] = [];
  for (const f of fixtures) out.push(await runFixture(f, bundle));
  return out;
}
