/**
 * The route map on its own: the shipped policies/routes.txt matches CONTRACT §4,
 * lookups are case-sensitive and segment-exact, and bad route files name their line.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { canonicalizeTarget } from '../../src/http/canonical-path.ts';
import { parseRouteMap, RouteMap, RouteMapError, type RouteLookup } from '../../src/policy/route-map.ts';

const routes = parseRouteMap(readFileSync('policies/routes.txt', 'utf8'), 'routes.txt');
const map = new RouteMap(routes);

function lookup(method: string, target: string): RouteLookup {
  const c = canonicalizeTarget(target);
  if (!c.ok) throw new Error(`${target} is not a canonical path`);
  return map.lookup(method, c.segments);
}

describe('the shipped route map covers CONTRACT §4', () => {
  it.each([
    ['GET /v1/workspaces/{ws}/licences', 'licence:list'],
    ['GET /v1/workspaces/{ws}/projects/{p}/licences', 'licence:list'],
    ['POST /v1/workspaces/{ws}/licences/{l}/refund-requests', 'licence:refund'],
    ['POST /v1/workspaces/{ws}/subscriptions/{s}/cancel', 'subscription:cancel'],
    ['GET /repo/{path*}', 'package:install'],
  ])('forwarded: %s → %s', (id, action) => {
    const r = routes.find((x) => x.id === id);
    expect(r).toMatchObject({ action, to: 'upstream' });
  });

  it('only /repo takes project tokens, and it is the only package:install route', () => {
    expect(routes.filter((r) => r.auth === 'token').map((r) => r.id)).toEqual(['GET /repo/{path*}']);
    expect(routes.filter((r) => r.action === 'package:install').map((r) => r.id)).toEqual(['GET /repo/{path*}']);
  });

  it.each([
    ['PUT /v1/me/workspace', undefined],
    ['POST /v1/workspaces', undefined],
    ['GET /v1/me/workspaces', undefined],
    ['GET /v1/workspaces/{ws}', 'workspace:read'],
    ['GET /v1/workspaces/{ws}/members', 'member:list'],
    ['PATCH /v1/workspaces/{ws}/members/{user}', 'member:update-role'],
    ['DELETE /v1/workspaces/{ws}/members/{user}', 'member:remove'],
    ['POST /v1/workspaces/{ws}/invites', 'member:invite'],
    ['DELETE /v1/workspaces/{ws}/invites/{id}', 'invite:revoke'],
    ['POST /v1/workspaces/{ws}/invites/{id}/reissue', 'invite:reissue'],
    ['GET /v1/invites/{token}', undefined],
    ['POST /v1/invites/{token}/accept', undefined],
    ['GET /v1/workspaces/{ws}/projects', 'project:list'],
    ['POST /v1/workspaces/{ws}/projects', 'project:create'],
    ['GET /v1/workspaces/{ws}/projects/{p}', 'project:read'],
    ['PATCH /v1/workspaces/{ws}/projects/{p}', 'project:update'],
    ['DELETE /v1/workspaces/{ws}/projects/{p}', 'project:delete'],
    ['GET /v1/workspaces/{ws}/projects/{p}/guests', 'guest:list'],
    ['POST /v1/workspaces/{ws}/projects/{p}/guests', 'guest:invite'],
    ['DELETE /v1/workspaces/{ws}/projects/{p}/guests/{user}', 'guest:remove'],
    ['GET /v1/workspaces/{ws}/projects/{p}/tokens', 'token:list'],
    ['GET /v1/workspaces/{ws}/projects/{p}/tokens/{t}', 'token:read'],
    ['POST /v1/workspaces/{ws}/projects/{p}/tokens', 'token:create'],
    ['POST /v1/workspaces/{ws}/projects/{p}/tokens/{t}/rotate', 'token:rotate'],
    ['DELETE /v1/workspaces/{ws}/projects/{p}/tokens/{t}', 'token:revoke'],
  ])('native: %s → %s', (id, action) => {
    const r = routes.find((x) => x.id === id);
    expect(r, id).toBeDefined();
    expect(r).toMatchObject({ to: 'native' });
    expect(r!.action).toBe(action);
  });

  it('only the invite preview is reachable without authentication', () => {
    expect(routes.filter((r) => r.auth === 'none').map((r) => r.id)).toEqual(['GET /v1/invites/{token}']);
  });

  it('rank-ruled routes take their target from the body, the member or the invite', () => {
    const targets = Object.fromEntries(routes.filter((r) => r.checks.some((c) => c.target)).map((r) => [r.id, r.checks.map((c) => `${c.action}@${c.target}`)]));
    expect(targets['POST /v1/workspaces/{ws}/invites']).toEqual(['member:invite@body.role']);
    expect(targets['PATCH /v1/workspaces/{ws}/members/{user}']).toEqual(['member:update-role@member', 'member:invite@body.role']);
    expect(targets['DELETE /v1/workspaces/{ws}/members/{user}']).toEqual(['member:remove@member']);
    expect(targets['POST /v1/workspaces/{ws}/invites/{id}/reissue']).toEqual(['invite:reissue@invite', 'grant@invite']);
    expect(targets['POST /v1/workspaces/{ws}/projects/{p}/guests']).toEqual(['guest:invite@body.role']);
  });
});

describe('lookup', () => {
  it('binds parameters', () => {
    expect(lookup('GET', '/v1/workspaces/acme/projects/web/tokens/t1')).toMatchObject({
      kind: 'match',
      match: { route: { id: 'GET /v1/workspaces/{ws}/projects/{p}/tokens/{t}' }, params: { ws: 'acme', p: 'web', t: 't1' } },
    });
  });

  it('HEAD finds the GET route', () => {
    expect(lookup('HEAD', '/v1/workspaces/acme/licences')).toMatchObject({ kind: 'match', match: { route: { id: 'GET /v1/workspaces/{ws}/licences' } } });
  });

  it.each([
    ['DELETE', '/v1/workspaces/acme/licences', ['GET', 'HEAD']],
    ['GET', '/v1/workspaces/acme/licences/l1/refund-requests', ['POST']],
    ['PUT', '/v1/workspaces/acme/projects/web', ['DELETE', 'GET', 'HEAD', 'PATCH']],
    ['GET', '/v1/workspaces/acme/members/me', ['DELETE', 'PATCH']],
    ['POST', '/repo/packages.json', ['GET', 'HEAD']],
    ['OPTIONS', '/v1/workspaces', ['POST']],
  ])('%s %s is 405 with Allow %j', (method, target, allow) => {
    expect(lookup(method, target)).toEqual({ kind: 'method_not_allowed', allow });
  });

  it('a literal segment wins over a parameter, without hiding the parameter route of another method', () => {
    expect(lookup('DELETE', '/v1/workspaces/acme/members/me')).toMatchObject({ match: { route: { action: 'member:leave' } } });
    expect(lookup('DELETE', '/v1/workspaces/acme/members/bob')).toMatchObject({ match: { route: { action: 'member:remove' }, params: { user: 'bob' } } });
    expect(lookup('PATCH', '/v1/workspaces/acme/members/me')).toMatchObject({ match: { route: { action: 'member:update-role' }, params: { user: 'me' } } });
  });

  it.each([
    '/v1/workspaces/acme/licences/',
    '/V1/workspaces/acme/licences',
    '/v1/workspaces/acme/Licences',
    '/v1/workspaces/acme/licences/x',
    '/v1/workspace',
    '/v1/workspaces/acme/projects/web/licences/',
    '/repo',
    '/repo/',
    '/Repo/packages.json',
    '/v1/workspaces/a%20b/licences',
    '/v1/workspaces/a%40b/licences',
    `/v1/workspaces/${'a'.repeat(129)}/licences`,
    '/_gate/healthz',
  ])('GET %s is not found', (target) => {
    expect(lookup('GET', target)).toEqual({ kind: 'not_found' });
  });

  it('/repo/{path*} takes the whole rest, but no empty segment in it', () => {
    expect(lookup('GET', '/repo/dist/acme/widget/1.0.0.zip')).toMatchObject({ match: { params: { path: 'dist/acme/widget/1.0.0.zip' } } });
    expect(map.lookup('GET', ['repo', 'p2', '', 'x.json'])).toEqual({ kind: 'not_found' });
    expect(map.lookup('GET', ['repo', 'p2', ''])).toEqual({ kind: 'not_found' });
  });

  it('ids up to 128 unreserved characters are parameters', () => {
    expect(lookup('GET', `/v1/workspaces/${'a'.repeat(128)}/licences`)).toMatchObject({ kind: 'match' });
    expect(lookup('GET', '/v1/workspaces/a.b_c~d-e/licences')).toMatchObject({ kind: 'match', match: { params: { ws: 'a.b_c~d-e' } } });
  });
});

describe('a bad route map names its line', () => {
  const ok = 'GET /v1/workspaces/{ws}/licences licence:list to=upstream\n';
  it.each([
    ['an unknown method', 'HEAD /x - to=native', /unknown method/],
    ['an unknown action', 'GET /x/{ws} secret:read to=upstream', /unknown action/],
    ['a missing to=', 'GET /x -', /to= must be/],
    ['an unknown option', 'GET /x - to=native via=proxy', /unknown option/],
    ['an option given twice', 'GET /x - to=native to=upstream', /given twice/],
    ['a literal with reserved characters', 'GET /x;y - to=native', /literal segment/],
    ['an empty segment', 'GET /x//y - to=native', /literal segment/],
    ['a path without a leading slash', 'GET x - to=native', /must start with/],
    ['{p} without {ws}', 'GET /p/{p} project:read to=native', /\{p\} needs \{ws\}/],
    ['{t} without {p}', 'GET /w/{ws}/t/{t} token:read to=native', /\{t\} needs \{p\}/],
    ['a rest parameter not last', 'GET /r/{rest*}/x - to=native', /must be the last/],
    ['a parameter twice', 'GET /w/{ws}/{ws} - to=native', /appears twice/],
    ['auth=token on a native route', 'GET /repo2/{path*} package:install to=native auth=token', /must be to=upstream/],
    ['auth=token for another action', 'GET /w/{ws}/l licence:list to=upstream auth=token', /only be package:install/],
    ['an action on an unauthenticated route', 'GET /w/{ws} workspace:read to=native auth=none', /cannot have an action/],
    ['the same route twice', 'GET /v1/workspaces/{other}/licences licence:list to=upstream', /same route as line 1/],
    ['target member without {user}', 'DELETE /w/{ws}/m member:remove to=native target=member', /needs a \{user\}/],
  ])('%s', (_name, line, message) => {
    let error: unknown;
    try {
      parseRouteMap(ok + line + '\n', 'routes.txt');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RouteMapError);
    expect((error as RouteMapError).line).toBe(2);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toMatch(/^routes\.txt:2: /);
  });

  it('an empty route map is refused', () => {
    expect(() => parseRouteMap('# only comments\n\n')).toThrow(RouteMapError);
  });
});
