/**
 * Fault injection, upstream side (issue #9 faults 1, 2, 6, 8, and CONTRACT §4 "Response
 * hygiene"): a scriptable upstream on raw sockets sends what no well-behaved server
 * would, to a real gateway process. Each case asserts what the client got, that the
 * gateway process is still alive, and that the next request is answered normally.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { ACME } from '../helpers/gateway.ts';
import { startGateProcess, sleep, waitUntil, type GateProcess } from '../helpers/gate-process.ts';
import { exchange, rawRequestText } from '../helpers/raw-exchange.ts';
import { ok, startRawUpstream, type RawScript, type RawUpstream } from '../helpers/raw-upstream.ts';

const UPSTREAM_TIMEOUT_MS = 1500;
let up: RawUpstream;
let gate: GateProcess;
let token: string;

beforeAll(async () => {
  up = await startRawUpstream();
  gate = await startGateProcess({ upstreamUrl: up.url, world: ACME, env: { GATE_UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS) } });
  token = await gate.auth('t1');
}, 40_000);
afterAll(async () => {
  await gate?.stop();
  await up?.close();
});
afterEach(() => {
  up.reset();
  up.script = ok();
});

const get = (path = '/repo/packages.json', method = 'GET', extra: Record<string, string> = {}) =>
  rawRequestText(method, path, { Authorization: token, Connection: 'close', ...extra });

/** The gateway survived and the next request is relayed as usual. */
async function expectHealthy(): Promise<void> {
  up.script = ok('GOOD');
  expect(await gate.alive()).toBe(true);
  const next = await exchange(gate.port, get());
  expect(next.status).toBe(200);
  expect(next.body).toBe('GOOD');
}

async function run(script: RawScript, opts: { method?: string; timeoutMs?: number; stopAfter?: number } = {}) {
  up.script = script;
  const method = opts.method ?? 'GET';
  return exchange(gate.port, get('/repo/packages.json', method), {
    timeoutMs: opts.timeoutMs ?? 6000,
    isHead: method === 'HEAD',
    ...(opts.stopAfter !== undefined ? { stopAfter: opts.stopAfter } : {}),
  });
}

function expectInvalid(r: { status: number; body: string }): void {
  expect(r.status).toBe(502);
  expect(JSON.parse(r.body).code).toBe('upstream_invalid_response');
}

describe('an answer the gateway cannot relay becomes 502 upstream_invalid_response (before the head)', () => {
  test('fault 1: a control byte in the reason phrase', async () => {
    expectInvalid(await run((s) => s.write('HTTP/1.1 200 O\x01K\r\nContent-Length: 2\r\n\r\nok')));
    await expectHealthy();
  });

  test('fault 1: DEL in the reason phrase', async () => {
    expectInvalid(await run((s) => s.write('HTTP/1.1 200 O\x7fK\r\nContent-Length: 2\r\n\r\nok')));
    await expectHealthy();
  });

  test('a status outside 200-599', async () => {
    expectInvalid(await run((s) => s.write('HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\nok')));
    await expectHealthy();
    expectInvalid(await run((s) => s.write('HTTP/1.1 600 Odd\r\nContent-Length: 2\r\n\r\nok')));
    await expectHealthy();
  });

  test('bad header bytes (a control byte in a value, a space in a name)', async () => {
    expectInvalid(await run((s) => s.write('HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 2\r\n\r\nok')));
    await expectHealthy();
    expectInvalid(await run((s) => s.write('HTTP/1.1 200 OK\r\nX A: b\r\nContent-Length: 2\r\n\r\nok')));
    await expectHealthy();
  });

  test('fault 2: 101 Switching Protocols (with Upgrade) to a plain GET answers at once', async () => {
    const r = await run((s) => s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'));
    expectInvalid(r);
    expect(r.ms).toBeLessThan(UPSTREAM_TIMEOUT_MS);
    await expectHealthy();
  });

  test('fault 2: 101 without an Upgrade header', async () => {
    const r = await run((s) => s.write('HTTP/1.1 101 Switching Protocols\r\n\r\n'));
    expectInvalid(r);
    expect(r.ms).toBeLessThan(UPSTREAM_TIMEOUT_MS);
    await expectHealthy();
  });

  test('a 1xx storm', async () => {
    const r = await run((s) => {
      for (let i = 0; i < 200; i++) s.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n');
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    expectInvalid(r);
    await expectHealthy();
  });

  test('a few 1xx before the answer are fine', async () => {
    const r = await run((s) => s.write('HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
    expect(r.status).toBe(200);
    expect(r.body).toBe('ok');
    await expectHealthy();
  });

  test('broken framing before the head is complete (two Content-Length values)', async () => {
    expectInvalid(await run((s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok')));
    await expectHealthy();
  });
});

describe('bodies that do not match their framing never reach the next exchange', () => {
  const SMUGGLED = 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL';

  test('204 with a body', async () => {
    const r = await run((s) => s.write('HTTP/1.1 204 No Content\r\n\r\n' + SMUGGLED));
    expect(r.status).toBe(204);
    expect(r.raw).not.toContain('EVIL');
    await expectHealthy();
  });

  test('304 with a body', async () => {
    const r = await run((s) => s.write('HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n' + SMUGGLED));
    expect(r.status).toBe(304);
    expect(r.raw).not.toContain('EVIL');
    await expectHealthy();
  });

  test('HEAD answered with a body', async () => {
    const r = await run((s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL'), { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(r.raw).not.toContain('EVIL');
    await expectHealthy();
  });

  test('Content-Length too short: the extra bytes are not the next answer', async () => {
    const r = await run((s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok' + SMUGGLED));
    expect(r.status).toBe(200);
    expect(r.body).toBe('ok');
    expect(r.raw).not.toContain('EVIL');
    await expectHealthy();
  });

  test('Content-Length too long, then the upstream closes: the client connection is cut', async () => {
    const r = await run((s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort'));
    expect(r.status).toBe(200);
    expect(r.complete).toBe(false);
    expect(r.ended).not.toBe('timeout');
    await expectHealthy();
  });

  test('Content-Length too long, then the upstream goes silent: cut after the idle timeout', async () => {
    const r = await run((s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort'));
    expect(r.status).toBe(200);
    expect(r.complete).toBe(false);
    expect(r.ended).not.toBe('timeout');
    expect(r.ms).toBeLessThan(UPSTREAM_TIMEOUT_MS + 2000);
    await expectHealthy();
  });

  test('broken chunking: the client connection is cut, never a "complete" answer', async () => {
    const r = await run((s) => s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nGOOD\r\nZZ\r\nxx\r\n0\r\n\r\n'));
    expect(r.complete).toBe(false);
    expect(r.ended).not.toBe('timeout');
    await expectHealthy();
  });
});

describe('connections that break', () => {
  test('reset before the head: 502 upstream_unavailable', async () => {
    const r = await run((s) => s.resetAndDestroy());
    expect(r.status).toBe(502);
    expect(JSON.parse(r.body).code).toBe('upstream_unavailable');
    await expectHealthy();
  });

  test('reset mid-body: the client connection is cut', async () => {
    const r = await run((s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst ten.', () => setTimeout(() => s.resetAndDestroy(), 50));
    });
    expect(r.status).toBe(200);
    expect(r.complete).toBe(false);
    expect(r.ended).not.toBe('timeout');
    await expectHealthy();
  });

  test('slow head (a byte at a time, each within the idle timeout): 504 at the deadline', async () => {
    const head = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Padding: ' + 'p'.repeat(80) + '\r\nContent-Length: 2\r\n\r\nok';
    const r = await run((s, _seen, ctx) => {
      let i = 0;
      ctx.every(100, () => {
        if (i < head.length && !s.destroyed) s.write(head[i++]!);
      });
    });
    expect(r.status).toBe(504);
    expect(JSON.parse(r.body).code).toBe('upstream_timeout');
    expect(r.ms).toBeLessThan(UPSTREAM_TIMEOUT_MS + 1500);
    await expectHealthy();
  });

  test('slow body (each chunk within the idle timeout): streamed through whole', async () => {
    const r = await run((s, _seen, ctx) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n');
      let i = 0;
      ctx.every(400, () => {
        if (i < 6 && !s.destroyed) s.write('abcdef'[i++]!);
      });
    });
    expect(r.status).toBe(200);
    expect(r.body).toBe('abcdef');
    expect(r.complete).toBe(true);
    await expectHealthy();
  });

  test('an endless body: when the client stops reading and leaves, the upstream connection is closed', async () => {
    const closedBefore = up.closed();
    const chunk = 'x'.repeat(16 * 1024);
    const r = await run(
      (s, _seen, ctx) => {
        s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
        ctx.every(5, () => {
          if (!s.destroyed && s.writableLength < 1 << 20) s.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
        });
      },
      { stopAfter: 256 * 1024 },
    );
    expect(r.status).toBe(200);
    await waitUntil(() => up.closed() > closedBefore, 'the upstream connection to close', 5000);
    await expectHealthy();
  });
});

describe('response headers', () => {
  test('fault 8: x-packagento-* from the upstream, in any spelling, never reach the client', async () => {
    up.script = (s) =>
      s.write(
        'HTTP/1.1 200 OK\r\nX-Packagento-Principal: user:mallory\r\nx_packagento_roles: owner\r\nX.Packagento.Action: x\r\n' +
          'X-Other: kept\r\nContent-Length: 2\r\n\r\nok',
      );
    const r = await exchange(gate.port, get());
    expect(r.status).toBe(200);
    expect(r.headers['x-other']).toBe('kept');
    expect(r.raw.toLowerCase()).not.toMatch(/x[-_.]packagento[-_.]/);
    await expectHealthy();
  });
});

describe('retries', () => {
  test('fault 6: a caller who leaves is not retried for (one upstream request, not two)', async () => {
    // A first exchange leaves a keep-alive socket in the gateway's pool, so the next request reuses it.
    up.script = (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok');
    const warm = await exchange(gate.port, get('/repo/p2/warm.json'));
    expect(warm.status).toBe(200);
    up.script = () => undefined; // never answers
    const before = up.seen.filter((s) => s.target === '/repo/p2/hang.json').length;
    expect(before).toBe(0);
    const ac = new AbortController();
    const pending = fetch(gate.url + '/repo/p2/hang.json', { headers: { authorization: token }, signal: ac.signal }).catch(() => 'aborted');
    await waitUntil(() => up.seen.some((s) => s.target === '/repo/p2/hang.json'), 'the upstream to see the request', 5000);
    ac.abort();
    expect(await pending).toBe('aborted');
    await sleep(500);
    expect(up.seen.filter((s) => s.target === '/repo/p2/hang.json')).toHaveLength(1);
    await expectHealthy();
  });

  test('an idempotent GET on a stale keep-alive socket is retried once, on a fresh one', async () => {
    up.script = (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok');
    expect((await exchange(gate.port, get('/repo/p2/warm2.json'))).status).toBe(200);
    let n = 0;
    up.script = (s) => {
      if (n++ === 0) s.resetAndDestroy();
      else ok('RETRIED')(s, { method: '', target: '', head: '' }, { later() {}, every() {} });
    };
    const r = await exchange(gate.port, get('/repo/p2/stale.json'));
    expect(r.status).toBe(200);
    expect(r.body).toBe('RETRIED');
    expect(up.seen.filter((s) => s.target === '/repo/p2/stale.json')).toHaveLength(2);
  });
});

describe('fault 14: upstream failures are logged on stderr at warn, with their cause', () => {
  const isWarn = (l: Record<string, any>) => l.level === 'warn' || l.level === 40;
  const upstreamWarnings = () => gate.logs.filter((l) => isWarn(l) && /upstream/i.test(String(l.msg)));

  test('a 502 (reset before the head) and a 504 (no head in time) each leave a warn line naming the cause', async () => {
    const before = upstreamWarnings().length;
    up.script = (s) => s.resetAndDestroy();
    const reset = await exchange(gate.port, get('/repo/p2/reset.json'));
    expect(reset.status).toBe(502);
    up.script = () => undefined;
    const silent = await exchange(gate.port, get('/repo/p2/silent.json'), { timeoutMs: UPSTREAM_TIMEOUT_MS + 3000 });
    expect(silent.status).toBe(504);
    await waitUntil(() => upstreamWarnings().length >= before + 2, 'two upstream warnings', 5000);
    const lines = upstreamWarnings().slice(before);
    const of = (status: number) => lines.find((l) => l.status === status);
    expect(of(502)).toMatchObject({ kind: 'connect', request_id: expect.any(String) });
    expect(String(of(502)!.cause)).toMatch(/ECONNRESET|socket hang up/);
    expect(of(504)).toMatchObject({ kind: 'timeout', request_id: expect.any(String) });
    // Never credentials or the query in the log.
    expect(JSON.stringify(lines)).not.toContain(token.slice(6, 30));
    await expectHealthy();
  });

  test('an invalid answer and a cut mid-body are logged too', async () => {
    const before = upstreamWarnings().length;
    await run((s) => s.write('HTTP/1.1 200 O\x01K\r\nContent-Length: 2\r\n\r\nok'));
    await run((s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nten bytes.', () => setTimeout(() => s.resetAndDestroy(), 50)));
    await waitUntil(() => upstreamWarnings().length >= before + 2, 'two upstream warnings', 5000);
    const kinds = upstreamWarnings().slice(before).map((l) => l.kind);
    expect(kinds).toEqual(expect.arrayContaining(['invalid_response', 'reset']));
    await expectHealthy();
  });
});
