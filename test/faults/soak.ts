/**
 * The fault soak (issue #9), kept out of `npm test`: `npx tsx test/faults/soak.ts`.
 *
 * A real gateway process in front of the raw misbehaving upstream, driven at a fixed
 * rate for SOAK_SECONDS (default 300) with a rotating mix of well-formed and broken
 * upstream answers (bad status bytes, 101, 1xx storms, short and long Content-Length,
 * broken chunking, resets before and after the head, silence) and of callers that go
 * away mid-request. Resident memory is sampled every 5 s from /proc.
 *
 * Passes (exit 0) when the gateway process is alive at the end, answered every request
 * (no connection refused, no hang past the client timeout), and its RSS after warm-up
 * grew by less than SOAK_RSS_BOUND_MB (default 64). Prints one JSON report.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { ACME } from '../helpers/gateway.ts';
import { startGateProcess } from '../helpers/gate-process.ts';
import { ok, startRawUpstream, type RawScript } from '../helpers/raw-upstream.ts';

const SECONDS = Number(process.env['SOAK_SECONDS'] ?? 300);
const RATE = Number(process.env['SOAK_RATE'] ?? 200); // requests per second
const RSS_BOUND_MB = Number(process.env['SOAK_RSS_BOUND_MB'] ?? 64);

const faults: [string, RawScript][] = [
  ['ok', ok('GOOD')],
  ['ok', ok('x'.repeat(4096))],
  ['bad-reason', (s) => s.write('HTTP/1.1 200 O\x01K\r\nContent-Length: 2\r\n\r\nok')],
  ['101', (s) => s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')],
  ['1xx-storm', (s) => s.write('HTTP/1.1 103 Early Hints\r\n\r\n'.repeat(50) + 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')],
  ['cl-short', (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA')],
  ['cl-long', (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort')],
  ['bad-chunk', (s) => s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nxx\r\n')],
  ['reset-head', (s) => s.resetAndDestroy()],
  ['reset-body', (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nten bytes.', () => s.resetAndDestroy())],
  ['x-packagento', (s) => s.write('HTTP/1.1 200 OK\r\nX-Packagento-Roles: owner\r\nContent-Length: 2\r\n\r\nok')],
];

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(m?.[1] ?? 0) / 1024);
}

async function main(): Promise<number> {
  const up = await startRawUpstream();
  let turn = 0;
  up.script = (s, seen, ctx) => {
    const [, script] = faults[turn++ % faults.length]!;
    script(s, seen, ctx);
  };
  const gate = await startGateProcess({ upstreamUrl: up.url, world: ACME, stdout: 'ignore', env: { GATE_UPSTREAM_TIMEOUT_MS: '1000' } });
  const token = await gate.auth('t1');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const statuses = new Map<string, number>();
  const count = (k: string) => statuses.set(k, (statuses.get(k) ?? 0) + 1);
  const samples: { t: number; rss_mb: number }[] = [];
  const started = Date.now();
  let sent = 0;
  let inflight = 0;

  const one = (abort: boolean) => {
    inflight++;
    const req = http.request({ agent, host: '127.0.0.1', port: gate.port, path: '/repo/packages.json', headers: { authorization: token }, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => count(String(res.statusCode)));
      res.on('error', () => count('cut'));
      res.on('close', () => inflight--);
    });
    req.on('timeout', () => {
      count('client-timeout');
      req.destroy();
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (!abort) count(e.code === 'ECONNREFUSED' ? 'refused' : 'cut');
      inflight--;
    });
    req.end();
    if (abort) setTimeout(() => req.destroy(), 5);
  };

  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const due = Math.floor(((Date.now() - started) / 1000) * RATE);
      while (sent < due && inflight < 512) {
        one(sent % 50 === 0);
        sent++;
      }
      if (Date.now() - started > SECONDS * 1000) {
        clearInterval(tick);
        resolve();
      }
    }, 10);
    const sample = setInterval(() => {
      samples.push({ t: Math.round((Date.now() - started) / 1000), rss_mb: rssMb(gate.child.pid!) });
      if (Date.now() - started > SECONDS * 1000) clearInterval(sample);
    }, 5000);
  });
  await new Promise((r) => setTimeout(r, 2000));
  const alive = await gate.alive();
  const warm = samples[Math.min(2, samples.length - 1)]?.rss_mb ?? 0;
  const peak = Math.max(...samples.map((s) => s.rss_mb));
  const report = {
    seconds: SECONDS,
    rate: RATE,
    sent,
    statuses: Object.fromEntries(statuses),
    rss_mb: { warm, peak, last: samples.at(-1)?.rss_mb, bound_over_warm: RSS_BOUND_MB },
    samples,
    alive,
  };
  console.log(JSON.stringify(report, null, 2));
  agent.destroy();
  await gate.stop();
  await up.close();
  const failed = !alive || (statuses.get('refused') ?? 0) > 0 || (statuses.get('client-timeout') ?? 0) > 0 || peak - warm > RSS_BOUND_MB;
  return failed ? 1 : 0;
}

process.exitCode = await main();
