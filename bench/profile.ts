/**
 * Profiles the gateway under load: `tsx bench/profile.ts [jwt|token] [seconds]`.
 * Starts the upstream and a gateway child with --cpu-prof, loads it with autocannon,
 * and prints the top self-time functions of the profile (bench-results/*.cpuprofile).
 */
import { mkdir, mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { startServer, stopServer } from './spawn.ts';
import { createSmallWorld } from './world.ts';

const [mode = 'jwt', seconds = '6'] = process.argv.slice(2);
const dir = await mkdtemp(join(tmpdir(), 'gate-prof-'));
await mkdir('bench-results', { recursive: true });

const upstream = await startServer('upstream');
const targets = await createSmallWorld(join(dir, 'small.db'));
const gateway =
  mode === 'bare'
    ? await startServer('bare-proxy', [upstream.url], ['--cpu-prof', '--cpu-prof-dir', 'bench-results'])
    : await startServer('gateway', [upstream.url, join(dir, 'small.db')], ['--cpu-prof', '--cpu-prof-dir', 'bench-results']);
const before = new Set(await readdir('bench-results'));
const headers = mode === 'jwt' ? { authorization: `Bearer ${targets.jwt}` } : { authorization: targets.basic };
const path = mode === 'token' ? targets.tokenPath : targets.jwtPath;
const result = await autocannon({ url: gateway.url + path, headers, connections: 32, duration: Number(seconds) });
console.log(`${mode}: ${(result.requests.total / Number(seconds)).toFixed(0)} req/s, non-2xx ${result.non2xx}`);
await stopServer(gateway);
await stopServer(upstream);
const file = (await readdir('bench-results')).find((f) => f.endsWith('.cpuprofile') && !before.has(f))!;
const profile = JSON.parse(await readFile(join('bench-results', file), 'utf8')) as {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount: number; children?: number[] }[];
};
const self = new Map<string, number>();
let total = 0;
for (const n of profile.nodes) {
  const key = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/work\/main\//, '')}:${n.callFrame.lineNumber}`;
  self.set(key, (self.get(key) ?? 0) + n.hitCount);
  total += n.hitCount;
}
for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
console.log(`profile: bench-results/${file}`);
