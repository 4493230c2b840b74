import { describe, expect, it } from 'vitest';
import { isProblem } from '../../src/http/problem.ts';
import { headerSafeJson, originalRequest } from '../../src/pipeline/authz.ts';

/** How the forward-auth listener reads the request a proxy asks about (CONTRACT §4b). */
describe('originalRequest', () => {
  const auth = ['Authorization', 'Bearer x', 'Host', 'api.example.com'];

  it('takes X-Forwarded-Method/-Uri (Traefik, Caddy) and drops them from the headers decided on', () => {
    const r = originalRequest('GET', '/_gate/authz?page=2', [...auth, 'X-Forwarded-Method', 'POST', 'X-Forwarded-Uri', '/v1/a?b=1']);
    expect(r).toEqual({ method: 'POST', target: '/v1/a?b=1', rawHeaders: auth });
  });

  it('takes X-Original-Method/-URI (nginx), in any spelling of the names', () => {
    const r = originalRequest('GET', '/_gate/authz', [...auth, 'x_original_method', 'DELETE', 'X-ORIGINAL-URI', '/v1/a']);
    expect(r).toEqual({ method: 'DELETE', target: '/v1/a', rawHeaders: auth });
  });

  it('takes the Envoy path_prefix form: the request\'s own method and the rest of the path', () => {
    expect(originalRequest('PATCH', '/_gate/authz/v1/a/b?c=d', auth)).toEqual({ method: 'PATCH', target: '/v1/a/b?c=d', rawHeaders: auth });
  });

  it.each<[string, string, string, string[], string]>([
    ['nothing names the original request', 'GET', '/_gate/authz', [], 'bad_request'],
    ['half a pair', 'GET', '/_gate/authz', ['X-Forwarded-Method', 'GET'], 'bad_request'],
    ['two pairs that disagree', 'GET', '/_gate/authz', ['X-Forwarded-Method', 'GET', 'X-Forwarded-Uri', '/v1/a', 'X-Original-Method', 'GET', 'X-Original-URI', '/v1/b'], 'bad_request'],
    ['a header twice', 'GET', '/_gate/authz', ['X-Forwarded-Method', 'GET', 'X-Forwarded-Method', 'GET', 'X-Forwarded-Uri', '/v1/a'], 'bad_request'],
    ['a method that is not one', 'GET', '/_gate/authz', ['X-Forwarded-Method', 'get me', 'X-Forwarded-Uri', '/v1/a'], 'bad_request'],
    ['an absolute URI', 'GET', '/_gate/authz', ['X-Forwarded-Method', 'GET', 'X-Forwarded-Uri', 'http://x/v1/a'], 'bad_path'],
    ['the header form on the Envoy path', 'GET', '/_gate/authz/v1/a', ['X-Original-URI', '/v1/b'], 'bad_request'],
    ['a caller\'s identity header', 'GET', '/_gate/authz', ['X-Forwarded-Method', 'GET', 'X-Forwarded-Uri', '/v1/a', 'X_Packagento_Roles', 'owner'], 'bad_request'],
    ['another path of the listener', 'GET', '/_gate/authzz', [], 'not_found'],
  ])('refuses %s', (_name, method, url, headers, code) => {
    const r = originalRequest(method, url, [...auth, ...headers]);
    expect(isProblem(r) && r.code).toBe(code);
  });

  it('both pairs are accepted when they agree (nginx sets both)', () => {
    const pair = ['X-Forwarded-Method', 'GET', 'X-Forwarded-Uri', '/v1/a', 'X-Original-Method', 'GET', 'X-Original-URI', '/v1/a'];
    expect(originalRequest('GET', '/_gate/authz', [...auth, ...pair])).toEqual({ method: 'GET', target: '/v1/a', rawHeaders: auth });
  });
});

describe('headerSafeJson', () => {
  it('is visible ASCII only, and parses back to the same value', () => {
    const value = { detail: 'café – "quoted"\n', n: 1 };
    const text = headerSafeJson(value);
    expect(text).toMatch(/^[\x20-\x7e]*$/);
    expect(JSON.parse(text)).toEqual(value);
  });
});
