/**
 * What the kernel does for each proxied request: `tsx bench/wakeups.ts [rate] [seconds]`.
 * Runs the bare `node:http` proxy and Gate (JWT and token routes) at one fixed arrival rate and
 * counts, with `perf stat` on the server's process, its CPU time, context switches and the
 * inter-processor interrupts it sends (`ipi:ipi_send_cpu`: a write to a loopback socket whose
 * reader sleeps on the other CPU wakes it with one). On a VM every IPI is a trip to the
 * hypervisor, billed to the sender as system time. Needs `perf` (Debian `linux-perf`) and
 * permission to trace (root, or kernel.perf_event_paranoid ≤ -1); says so and stops otherwise.
 */
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import autocannon from 'autocannon';
import { killAll, startServer } from './spawn.ts';
import { createSmallWorld } from './world.ts';

const run = promisify(execFile);
const [rate = '2000', seconds = '4'] = process.argv.slice(2);
const EVENTS = ['task-clock', 'context-switches', 'ipi:ipi_send_cpu'];
try {
  await run('perf', ['stat', '-e', EVENTS.join(','), '--', 'true']);
} catch (err) {
  console.log(`perf cannot count ${EVENTS.join(', ')} here (${(err as Error).message.split('\n')[0]}); install linux-perf and run as root`);
  process.exit(0);
}
const dir = await mkdtemp(join(tmpdir(), 'gate-wakeups-'));
const upstream = await startServer('upstream');
const t = await createSmallWorld(join(dir, 'small.db'));
const bare = await startServer('bare-proxy', [upstream.url]);
const gate = await startServer('gateway', [upstream.url, join(dir, 'small.db')]);
const cases = [
  { name: 'bare node:http proxy', server: bare, path: t.jwtPath, headers: {} },
  { name: 'Gate, user JWT', server: gate, path: t.jwtPath, headers: { authorization: `Bearer ${t.jwt}` } },
  { name: 'Gate, project token', server: gate, path: t.tokenPath, headers: { authorization: t.basic } },
];
console.log(`fixed ${rate} req/s, 50 connections, perf stat over ${seconds} s of each load; per request:`);
console.log('| server | CPU µs | context switches | IPIs sent |\n|---|---:|---:|---:|');
for (const c of cases) {
  const opts = { url: c.server.url + c.path, headers: c.headers, connections: 50, overallRate: Number(rate) };
  await autocannon({ ...opts, duration: 2 });
  const load = autocannon({ ...opts, duration: Number(seconds) + 2 });
  await new Promise((r) => setTimeout(r, 1000));
  const { stderr } = await run('perf', ['stat', '-x', ',', '-e', EVENTS.join(','), '-p', String(c.server.pid), '--', 'sleep', seconds]);
  await load;
  const count = (event: string) => Number(stderr.split('\n').find((l) => l.includes(event))?.split(',')[0] ?? NaN);
  const requests = Number(rate) * Number(seconds);
  const per = (v: number) => (v / requests).toFixed(2);
  console.log(`| ${c.name} | ${((count('task-clock') * 1000) / requests).toFixed(1)} | ${per(count('context-switches'))} | ${per(count('ipi:ipi_send_cpu'))} |`);
}
killAll();
