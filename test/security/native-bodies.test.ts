/**
 * Bodies of the gateway's own API (CONTRACT §4): JSON only, strict schema, at most
 * 64 KiB (also chunked). The data plane is tested alone: native handlers are
 * replaced by recording stubs, so only the gateway's own body rules are under test.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { NativeHandlers } from '../../src/team/types.ts';
import { parseRouteMap } from '../../src/policy/route-map.ts';
import { ACME, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { decisionOf, expectRefused, send } from './support.ts';

const handled: { route: string; body: unknown }[] = [];
const stub = (route: string, body?: z.ZodType): NativeHandlers[string] => ({
  ...(body ? { body } : {}),
  async handle({ body: parsed }) {
    handled.push({ route, body: parsed });
    return new Response(JSON.stringify({ stub: route }), { status: 200, headers: { 'content-type': 'application/json' } });
  },
});

// The gateway refuses a policy naming a native route without a handler: every native route gets a
// body-less stub, and the one under test gets a strict schema.
const NATIVES: NativeHandlers = Object.fromEntries(
  parseRouteMap(readFileSync('policies/routes.txt', 'utf8'))
    .filter((r) => r.to === 'native')
    .map((r) => [r.id, stub(r.id)]),
);
NATIVES['POST /v1/workspaces/{ws}/projects'] = stub('create-project', z.strictObject({ name: z.string().min(1).max(100) }));

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway({ world: ACME, natives: NATIVES });
});
afterAll(async () => {
  await t?.close();
});

const CREATE = '/v1/workspaces/acme/projects';
const JSON_TYPE: [string, string] = ['Content-Type', 'application/json'];

function bodyOfSize(size: number): string {
  const overhead = JSON.stringify({ name: '' }).length;
  return JSON.stringify({ name: 'x'.repeat(size - overhead) });
}


describe('native bodies', () => {
  it('control: exactly 64 KiB passes the size limit (and is then judged by the schema)', async () => {
    const exact = bodyOfSize(64 * 1024);
    expect(Buffer.byteLength(exact)).toBe(64 * 1024);
    const big = await send(t, 'POST', CREATE, { as: 'alice', headers: [JSON_TYPE], body: exact });
    // The name is longer than the schema allows: the body was read and parsed, not refused for size.
    expectRefused(big, 400, 'invalid_body');
  });

  it('control: a valid body reaches the handler, parsed', async () => {
    const res = await send(t, 'POST', CREATE, { as: 'alice', headers: [JSON_TYPE], body: '{"name":"shop"}' });
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ stub: 'create-project' });
    expect(handled.at(-1)).toEqual({ route: 'create-project', body: { name: 'shop' } });
    expect(res.upstream()).toHaveLength(0);
  });

  it('> 64 KiB with Content-Length: 413, the handler never runs', async () => {
    const before = handled.length;
    const res = await send(t, 'POST', CREATE, { as: 'alice', headers: [JSON_TYPE], body: bodyOfSize(64 * 1024 + 1) });
    expectRefused(res, 413, 'payload_too_large');
    expect(handled.length).toBe(before);
  });

  it('> 64 KiB chunked: 413, the handler never runs', async () => {
    const before = handled.length;
    const res = await send(t, 'POST', CREATE, { as: 'alice', headers: [JSON_TYPE], body: bodyOfSize(200 * 1024), chunked: 8192 });
    expectRefused(res, 413, 'payload_too_large');
    expect(handled.length).toBe(before);
  });

  it('a large body is refused only after the decision: a caller without the action gets 403, not 413', async () => {
    const res = await send(t, 'POST', CREATE, { as: 'vic', headers: [JSON_TYPE], body: bodyOfSize(100 * 1024) });
    expectRefused(res, 403, 'forbidden');
  });

  it.each<[string, [string, string][], string, number, string]>([
    ['an unknown field', [JSON_TYPE], '{"name":"shop","owner":"mallory"}', 400, 'invalid_body'],
    ['a wrong type', [JSON_TYPE], '{"name":42}', 400, 'invalid_body'],
    ['invalid JSON', [JSON_TYPE], '{"name":', 400, 'invalid_body'],
    ['a JSON array', [JSON_TYPE], '[{"name":"shop"}]', 400, 'invalid_body'],
    ['JSON null', [JSON_TYPE], 'null', 400, 'invalid_body'],
    ['a form body', [['Content-Type', 'application/x-www-form-urlencoded']], 'name=shop', 415, 'unsupported_media_type'],
    ['no content type', [], '{"name":"shop"}', 415, 'unsupported_media_type'],
    ['text/plain JSON', [['Content-Type', 'text/plain']], '{"name":"shop"}', 415, 'unsupported_media_type'],
    ['duplicate keys smuggling an unknown field', [JSON_TYPE], '{"name":"a","name":"b","__proto__":{"admin":true}}', 400, 'invalid_body'],
  ])('%s is refused (%s)', async (_name, headers, body, status, code) => {
    const before = handled.length;
    const res = await send(t, 'POST', CREATE, { as: 'alice', headers, body });
    expectRefused(res, status, code);
    expect(handled.length).toBe(before);
  });

  it('a missing body on a route that needs one is 400', async () => {
    const before = handled.length;
    const res = await send(t, 'POST', CREATE, { as: 'alice', headers: [JSON_TYPE] });
    expectRefused(res, 400, 'invalid_body');
    expect(handled.length).toBe(before);
  });

  it('a body on a route that takes none is 400 unexpected_body, after the decision', async () => {
    const before = handled.length;
    const res = await send(t, 'DELETE', '/v1/workspaces/acme/invites/nope', { as: 'bob', headers: [JSON_TYPE], body: '{"x":1}' });
    expectRefused(res, 400, 'unexpected_body');
    expect(handled.length).toBe(before);
    // The decision itself was an allow: the body rule of a native route is applied after it.
    expect(decisionOf(res).result).toBe('allow');
  });

  it('a body on a GET is refused by the gate itself (no body is ever read or forwarded on GET/HEAD)', async () => {
    const before = handled.length;
    const res = await send(t, 'GET', '/v1/workspaces/acme', { as: 'vic', headers: [JSON_TYPE], body: '{"x":1}' });
    expectRefused(res, 400, 'unexpected_body');
    expect(handled.length).toBe(before);
    expect(decisionOf(res)).toMatchObject({ result: 'deny', code: 'unexpected_body' });
  });
});
