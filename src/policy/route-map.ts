import { isAction, type Action } from '../domain.ts';

/**
 * The route map: `METHOD PATH ACTION [option=value …]` lines in `policies/routes.txt`.
 * Policies speak in actions; this file is the only place that speaks in URLs.
 */

export const ROUTE_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
export type RouteMethod = (typeof ROUTE_METHODS)[number];

export const TARGET_SOURCES = ['body.role', 'member', 'self', 'invite'] as const;
export type TargetSource = (typeof TARGET_SOURCES)[number];

/** `grant` stands for the action that created an invite (member:invite or guest:invite). */
export type CheckAction = Action | 'grant';

export interface RouteCheck {
  action: CheckAction;
  target: TargetSource | undefined;
}

export interface Route {
  /** A stable id: `METHOD PATH`, e.g. `GET /v1/workspaces/{ws}`. */
  id: string;
  method: RouteMethod;
  pattern: string;
  /** `-` routes carry no action: any authenticated caller (or anyone, with auth=none). */
  action: Action | undefined;
  checks: RouteCheck[];
  to: 'native' | 'upstream';
  auth: 'jwt' | 'token' | 'none';
  guests: 'project' | 'workspace';
  segments: PatternSegment[];
  /** File line, for reviewers and `check`. */
  line: number;
}

export type PatternSegment =
  | { kind: 'literal'; value: string }
  | { kind: 'param'; name: string }
  | { kind: 'rest'; name: string };

export interface RouteMatch {
  route: Route;
  params: Record<string, string>;
}

export type RouteLookup =
  | { kind: 'match'; match: RouteMatch }
  | { kind: 'method_not_allowed'; allow: string[] }
  | { kind: 'not_found' };

export class RouteMapError extends Error {
  constructor(readonly file: string, readonly line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.name = 'RouteMapError';
  }
}

/** Resource parameters the gateway checks for containment. */
export const RESOURCE_PARAMS = { ws: 'workspace', p: 'project', t: 'token' } as const;

const PARAM_NAME = /^[a-z][a-z0-9_]*$/;
/** Ids in the API are short unreserved strings; anything else cannot name a resource. */
const ID_SEGMENT = /^[A-Za-z0-9._~-]{1,128}$/;

function parsePattern(file: string, line: number, pattern: string): PatternSegment[] {
  if (!pattern.startsWith('/')) throw new RouteMapError(file, line, `path "${pattern}" must start with /`);
  const parts = pattern.split('/').slice(1);
  const names = new Set<string>();
  return parts.map((part, i) => {
    const m = /^\{([^}]*)\}$/.exec(part);
    if (m) {
      const rest = m[1]!.endsWith('*');
      const name = rest ? m[1]!.slice(0, -1) : m[1]!;
      if (!PARAM_NAME.test(name)) throw new RouteMapError(file, line, `bad parameter name "{${m[1]}}"`);
      if (names.has(name)) throw new RouteMapError(file, line, `parameter {${name}} appears twice`);
      names.add(name);
      if (rest && i !== parts.length - 1) throw new RouteMapError(file, line, `{${name}*} must be the last segment`);
      return rest ? { kind: 'rest', name } : { kind: 'param', name };
    }
    if (!/^[A-Za-z0-9._~-]+$/.test(part)) {
      throw new RouteMapError(file, line, `literal segment "${part}" must be non-empty unreserved characters`);
    }
    return { kind: 'literal', value: part };
  });
}

function parseCheck(file: string, line: number, spec: string, defaultTarget?: string): RouteCheck {
  const [action, target] = spec.includes('@') ? spec.split('@', 2) : [spec, defaultTarget];
  if (action !== 'grant' && !isAction(action!)) throw new RouteMapError(file, line, `unknown action "${action}"`);
  if (target !== undefined && !(TARGET_SOURCES as readonly string[]).includes(target)) {
    throw new RouteMapError(file, line, `unknown target "${target}" (one of ${TARGET_SOURCES.join(', ')})`);
  }
  return { action: action as CheckAction, target: target as TargetSource | undefined };
}

/** Parses the route map text; throws RouteMapError naming the file and line. */
export function parseRouteMap(text: string, file = 'routes.txt'): Route[] {
  const routes: Route[] = [];
  const seen = new Map<string, number>();
  text.split('\n').forEach((rawLine, index) => {
    const lineNo = index + 1;
    const line = rawLine.replace(/#.*$/, '').trim();
    if (line === '') return;
    const [method, pattern, actionSpec, ...options] = line.split(/\s+/);
    if (!method || !pattern || !actionSpec) {
      throw new RouteMapError(file, lineNo, 'expected METHOD PATH ACTION [option=value …]');
    }
    if (!(ROUTE_METHODS as readonly string[]).includes(method)) {
      throw new RouteMapError(file, lineNo, `unknown method "${method}" (HEAD follows GET)`);
    }
    const segments = parsePattern(file, lineNo, pattern);
    const opts = new Map<string, string[]>();
    for (const opt of options) {
      const eq = opt.indexOf('=');
      if (eq <= 0) throw new RouteMapError(file, lineNo, `option "${opt}" must be name=value`);
      const name = opt.slice(0, eq);
      if (!['to', 'auth', 'target', 'also', 'guests'].includes(name)) {
        throw new RouteMapError(file, lineNo, `unknown option "${name}"`);
      }
      if (name !== 'also' && opts.has(name)) throw new RouteMapError(file, lineNo, `option "${name}" given twice`);
      opts.set(name, [...(opts.get(name) ?? []), opt.slice(eq + 1)]);
    }
    const to = opts.get('to')?.[0];
    if (to !== 'native' && to !== 'upstream') throw new RouteMapError(file, lineNo, 'to= must be native or upstream');
    const auth = opts.get('auth')?.[0] ?? 'jwt';
    if (auth !== 'jwt' && auth !== 'token' && auth !== 'none') {
      throw new RouteMapError(file, lineNo, 'auth= must be jwt, token or none');
    }
    const guests = opts.get('guests')?.[0] ?? 'project';
    if (guests !== 'project' && guests !== 'workspace') {
      throw new RouteMapError(file, lineNo, 'guests= must be workspace (or left out)');
    }
    let action: Action | undefined;
    const checks: RouteCheck[] = [];
    if (actionSpec === '-') {
      if (opts.has('target') || opts.has('also')) {
        throw new RouteMapError(file, lineNo, 'a route without an action cannot have target= or also=');
      }
    } else {
      const main = parseCheck(file, lineNo, actionSpec, opts.get('target')?.[0]);
      if (main.action === 'grant') throw new RouteMapError(file, lineNo, '"grant" is only valid in also=');
      action = main.action;
      checks.push(main);
      for (const also of opts.get('also') ?? []) checks.push(parseCheck(file, lineNo, also));
    }
    for (const check of checks) {
      if (check.target === 'member' && !segments.some((s) => s.kind === 'param' && s.name === 'user')) {
        throw new RouteMapError(file, lineNo, 'target member needs a {user} parameter');
      }
      if (check.target === 'invite' && !segments.some((s) => s.kind === 'param' && s.name === 'id')) {
        throw new RouteMapError(file, lineNo, 'target invite needs an {id} parameter');
      }
      if (check.action === 'grant' && check.target !== 'invite') {
        throw new RouteMapError(file, lineNo, 'grant is only defined @invite');
      }
    }
    const hasParam = (n: string) => segments.some((s) => s.kind === 'param' && s.name === n);
    if (hasParam('p') && !hasParam('ws')) throw new RouteMapError(file, lineNo, '{p} needs {ws}');
    if (hasParam('t') && !hasParam('p')) throw new RouteMapError(file, lineNo, '{t} needs {p}');
    if (auth === 'token' && to !== 'upstream') throw new RouteMapError(file, lineNo, 'auth=token routes must be to=upstream');
    if (auth === 'token' && action !== 'package:install') {
      throw new RouteMapError(file, lineNo, 'auth=token routes can only be package:install');
    }
    if (action !== undefined && auth === 'none') throw new RouteMapError(file, lineNo, 'auth=none routes cannot have an action');

    const id = `${method} ${pattern}`;
    const shape = `${method} ${segments.map((s) => (s.kind === 'literal' ? s.value : s.kind === 'rest' ? '*' : '{}')).join('/')}`;
    if (seen.has(shape)) throw new RouteMapError(file, lineNo, `same route as line ${seen.get(shape)}`);
    seen.set(shape, lineNo);
    routes.push({
      id,
      method: method as RouteMethod,
      pattern,
      action,
      checks,
      to,
      auth,
      guests,
      segments,
      line: lineNo,
    });
  });
  if (routes.length === 0) throw new RouteMapError(file, 1, 'the route map has no routes');
  return routes;
}

function matchSegments(pattern: PatternSegment[], segments: string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.kind === 'rest') {
      const rest = segments.slice(i);
      if (rest.length === 0 || rest.some((s) => s === '')) return undefined;
      params[p.name] = rest.join('/');
      return params;
    }
    const s = segments[i];
    if (s === undefined) return undefined;
    if (p.kind === 'literal') {
      if (s !== p.value) return undefined;
    } else {
      if (!ID_SEGMENT.test(s)) return undefined;
      params[p.name] = s;
    }
  }
  return pattern.length === segments.length ? params : undefined;
}

/** Higher is more specific: literal > param > rest, compared segment by segment. */
function specificity(route: Route): number[] {
  return route.segments.map((s) => (s.kind === 'literal' ? 3 : s.kind === 'param' ? 2 : 1));
}

function compareSpecificity(a: Route, b: Route): number {
  const sa = specificity(a);
  const sb = specificity(b);
  for (let i = 0; i < Math.max(sa.length, sb.length); i++) {
    const d = (sb[i] ?? 0) - (sa[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** A compiled route map: matches canonical path segments to a route. */
export class RouteMap {
  readonly routes: readonly Route[];
  readonly #ordered: readonly Route[];
  /** For a path of N segments, the routes that can match it, in specificity order. */
  readonly #bySegmentCount = new Map<number, readonly Route[]>();

  constructor(routes: Route[]) {
    this.routes = routes;
    this.#ordered = [...routes].sort(compareSpecificity);
  }

  #candidates(count: number): readonly Route[] {
    let candidates = this.#bySegmentCount.get(count);
    if (candidates === undefined) {
      // Same order as the full list, so "a literal wins over a parameter" holds exactly as before.
      candidates = this.#ordered.filter((r) =>
        r.segments.at(-1)?.kind === 'rest' ? r.segments.length <= count : r.segments.length === count,
      );
      if (this.#bySegmentCount.size < 256) this.#bySegmentCount.set(count, candidates);
    }
    return candidates;
  }

  /** `HEAD` is looked up as `GET`. Segments come from `canonicalizeTarget`. */
  lookup(method: string, segments: string[]): RouteLookup {
    const effective = method === 'HEAD' ? 'GET' : method;
    let allow: Set<string> | undefined;
    for (const route of this.#candidates(segments.length)) {
      const params = matchSegments(route.segments, segments);
      if (params === undefined) continue;
      // The first route of the right method wins; more specific routes of other methods only
      // feed the Allow header of a 405.
      if (route.method === effective) return { kind: 'match', match: { route, params } };
      allow ??= new Set();
      allow.add(route.method);
      if (route.method === 'GET') allow.add('HEAD');
    }
    if (allow !== undefined) return { kind: 'method_not_allowed', allow: [...allow].sort() };
    return { kind: 'not_found' };
  }
}
