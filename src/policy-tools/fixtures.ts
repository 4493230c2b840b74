import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { formatPath, YamlSource, type Path } from './yaml-source.ts';
import { hasTarget, NO_TARGET, TARGET_ROLES } from '../domain.ts';
import type { Target } from '../policy/decision-table.ts';
import {
  actionCaseSchema,
  fixtureFileSchema,
  httpCaseSchema,
  tableSchema,
  type HttpCaseInput,
} from './fixture-schema.ts';
import { ANONYMOUS } from './world-env.ts';
import { checkPrincipal, expandTable, indexWorld, keyOf, resolveScope } from './fixture-cases.ts';
import type { World } from './world.ts';

export { FixtureError, type ActionCase, type Expect, type Fixture, type FixtureCase, type HttpCase } from './fixture-types.ts';
import { FixtureError, type Fixture, type FixtureCase } from './fixture-types.ts';

function defaultHttpName(c: HttpCaseInput): string {
  const body = c.body !== undefined ? ` ${JSON.stringify(c.body)}` : '';
  return `${c.as ?? ANONYMOUS} ${c.request}${body}`;
}

/** Parses one fixture file's text. Throws FixtureError naming the file and line. */
export function parseFixture(text: string, file: string): Fixture {
  const src = YamlSource.parse(text, file, (f, l, r) => new FixtureError(f, l, r));
  const doc = src.doc;
  const data: unknown = doc.toJS({ maxAliasCount: 1000 });
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new FixtureError(file, 1, 'a fixture file is a mapping with name, world and cases or tables');
  }

  // Cases and tables are parsed one by one below (a case with the schema its shape asks for),
  // so a message names the one entry that is wrong rather than a union's every branch.
  const loose = fixtureFileSchema.omit({ cases: true, tables: true }).safeParse(
    Object.fromEntries(Object.entries(data).filter(([k]) => k !== 'cases' && k !== 'tables')),
  );
  if (!loose.success) throw src.zodFailure([], loose.error);
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
      if (!parsed.success) throw src.zodFailure(path, parsed.error);
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
    if (!parsed.success) throw src.zodFailure(path, parsed.error);
    const c = parsed.data;
    checkPrincipal(file, src, [...path, 'as'], index, c.as);
    const scope = resolveScope(file, src, path, index, c);
    const targets = TARGET_ROLES[c.action];
    let target: Target = NO_TARGET;
    if (hasTarget(c.action)) {
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
    if (!parsed.success) throw src.zodFailure(['tables', i], parsed.error);
    cases.push(...expandTable(file, src, i, parsed.data, index));
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
  const src = YamlSource.parse(text, file, (f, l, r) => new FixtureError(f, l, r));
  const doc = src.doc;
  const data = doc.toJS({ maxAliasCount: 1000 }) as { world?: unknown } | null;
  if (typeof data !== 'object' || data === null || data.world === undefined) throw new FixtureError(file, 1, 'no world: in this file');
  const parsed = fixtureFileSchema.shape.world.safeParse(data.world);
  if (!parsed.success) throw src.zodFailure(['world'], parsed.error);
  const index = indexWorld(file, src, parsed.data);
  return { file, world: parsed.data, principals: new Set([...index.users, ...index.tokens.keys()]) };
}

/** Reads and parses one fixture file; `file` in messages is the path relative to `cwd`. */
export async function loadFixtureFile(path: string, cwd = process.cwd()): Promise<Fixture> {
  const full = resolve(cwd, path);
  const file = relative(cwd, full) || path;
  let text: string;
  try {
    text = await readFile(full, 'utf8');
  } catch (err) {
    throw new FixtureError(file, undefined, `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return parseFixture(text, file);
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
