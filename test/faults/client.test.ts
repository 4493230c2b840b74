/**
 * Caller-side faults (issue #9 faults 7 and 8), against a real gateway process:
 * bytes pipelined behind a forwarded request never replace the upstream's answer to
 * it, and `Expect: 100-continue` is answered only after the request was allowed.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import net from 'node:net';
import { ACME } from '../helpers/gateway.ts';
import { startGateProcess, sleep, waitUntil, type GateProcess } from '../helpers/gate-process.ts';
import { exchange, rawRequestText } from '../helpers/raw-exchange.ts';
import { ok, startRawUpstream, type RawUpstream } from '../helpers/raw-upstream.ts';

const REFUND = '/v1/workspaces/acme/licences/l1/refund-requests';
let up: RawUpstream;
let gate: GateProcess;
let alice: string;

beforeAll(async () => {
  up = await startRawUpstream();
  gate = await startGateProcess({ upstreamUrl: up.url, world: ACME });
  alice = await gate.auth('alice');
}, 40_000);
afterAll(async () => {
  await gate?.stop();
  await up?.close();
});
afterEach(async () => {
  up.reset();
  up.script = ok();
  expect(await gate.alive()).toBe(true);
});

/** The upstream answers a POST after `ms` (its body arrives on the same connection and is ignored). */
const slowCreated = (ms: number) => {
  up.script = (s, seen, ctx) => {
    if (seen.method !== 'POST') return;
    ctx.later(ms, () => {
      if (!s.destroyed) s.write('HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"refund":"r1"}');
    });
  };
};

describe('fault 7: pipelined bytes behind a forwarded POST', () => {
  test('garbage after the POST: the client gets the upstream answer first, then the connection closes', async () => {
    slowCreated(300);
    const body = '{"reason":"x"}';
    const post = rawRequestText('POST', REFUND, { Authorization: alice, 'Content-Type': 'application/json', 'Content-Length': String(body.length) }, body);
    const r = await exchange(gate.port, post + 'THIS IS NOT HTTP\x01\r\n\r\n', { timeoutMs: 5000 });
    expect(up.seen.filter((s) => s.method === 'POST')).toHaveLength(1);
    expect(r.status).toBe(201);
    expect(r.body).toBe('{"refund":"r1"}');
    expect(r.raw.startsWith('HTTP/1.1 201')).toBe(true);
    expect(r.ended).toBe('close');
  });

  test('a valid request pipelined behind it is answered after it, in order', async () => {
    slowCreated(200);
    const body = '{"reason":"y"}';
    const post = rawRequestText('POST', REFUND, { Authorization: alice, 'Content-Type': 'application/json', 'Content-Length': String(body.length) }, body);
    const get = rawRequestText('GET', '/_gate/healthz', { Connection: 'close' });
    const r = await exchange(gate.port, post + get, { timeoutMs: 5000 });
    expect(r.status).toBe(201);
    const second = r.raw.indexOf('HTTP/1.1 ', 10);
    expect(second).toBeGreaterThan(0);
    expect(r.raw.slice(second).startsWith('HTTP/1.1 200')).toBe(true);
  });
});

/** Sends a request head with `Expect: 100-continue` and no body; returns what arrives within `ms`. */
function expectContinue(headers: Record<string, string>, ms = 1000): Promise<{ first: string; socket: net.Socket; all: () => string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(gate.port, '127.0.0.1');
    let got = '';
    socket.on('data', (c) => (got += c.toString('latin1')));
    socket.on('error', reject);
    socket.write(rawRequestText('POST', REFUND, { 'Content-Type': 'application/json', 'Content-Length': '14', Expect: '100-continue', ...headers }));
    setTimeout(() => resolve({ first: got, socket, all: () => got }), ms);
  });
}

describe('fault 8: Expect: 100-continue', () => {
  test('is not answered before authentication: an unauthenticated caller gets 401 and no 100 Continue', async () => {
    const seenBefore = up.seen.length;
    const { first, socket } = await expectContinue({});
    socket.destroy();
    expect(first).not.toMatch(/^HTTP\/1\.1 100/);
    expect(first).toMatch(/^HTTP\/1\.1 401/);
    expect(up.seen).toHaveLength(seenBefore);
  });

  test('is not answered before the decision: a caller without the action gets 403 and no 100 Continue', async () => {
    const { first, socket } = await expectContinue({ Authorization: await gate.auth('vic') });
    socket.destroy();
    expect(first).not.toMatch(/^HTTP\/1\.1 100/);
    expect(first).toMatch(/^HTTP\/1\.1 403/);
  });

  test('an allowed caller gets 100 Continue, sends the body, and gets the upstream answer', async () => {
    slowCreated(10);
    const { first, socket, all } = await expectContinue({ Authorization: alice, Connection: 'close' }, 500);
    expect(first).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\n/);
    socket.write('{"reason":"z"}');
    await waitUntil(() => all().includes('HTTP/1.1 201'), 'the upstream answer', 5000);
    socket.destroy();
    await sleep(10);
  });
});
