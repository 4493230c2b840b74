/**
 * CPU cost per request of each server at a fixed, unsaturated rate:
 * `tsx bench/cost.ts [rate] [seconds] [rounds]`. Reads utime+stime of the server
 * process from /proc before and after each load; the cases are interleaved over the
 * rounds and the median is reported (this machine is noisy). Used to find where the
 * gateway's time goes; the cost ledger (bench/ledger.ts, `npm run bench:ledger`) is the
 * side-by-side version with every reference server and the per-stage stand-ins.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { processCpuUs as cpuUs } from './cpu.ts';
import { killAll, startServer } from './spawn.ts';
import { createSmallWorld } from './world.ts';

const [rate = '2000', seconds = '5', rounds = '3'] = process.argv.slice(2);
const dir = await mkdtemp(join(tmpdir(), 'gate-cost-'));
const upstream = await startServer('upstream');
const targets = await createSmallWorld(join(dir, 'small.db'));
const servers = {
  bare: await startServer('bare-proxy', [upstream.url]),
  gateway: await startServer('gateway', [upstream.url, join(dir, 'small.db')]),
};
const cases: [string, { url: string; pid: number }, string, Record<string, string>][] = [
  ['bare proxy', servers.bare, targets.jwtPath, {}],
  ['gateway JWT', servers.gateway, targets.jwtPath, { authorization: `Bearer ${targets.jwt}` }],
  ['gateway token', servers.gateway, targets.tokenPath, { authorization: targets.basic }],
];
const costs = new Map<string, number[]>();
for (const [, s, path, headers] of cases) await autocannon({ url: s.url + path, headers, connections: 16, duration: 2, overallRate: Number(rate) });
for (let round = 0; round < Number(rounds); round++) {
  for (const [name, s, path, headers] of cases) {
    const before = await cpuUs(s.pid);
    const r = await autocannon({ url: s.url + path, headers, connections: 16, duration: Number(seconds), overallRate: Number(rate) });
    if (r.non2xx > 0 || r.errors > 0) throw new Error(`${name}: ${r.non2xx} non-2xx, ${r.errors} errors`);
    costs.set(name, [...(costs.get(name) ?? []), ((await cpuUs(s.pid)) - before) / r.requests.total]);
  }
}
for (const [name, values] of costs) {
  const sorted = [...values].sort((a, b) => a - b);
  console.log(`${name.padEnd(14)} median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} µs CPU per request (runs: ${values.map((v) => v.toFixed(0)).join(', ')})`);
}
killAll();
