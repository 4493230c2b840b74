/**
 * Profiles a server under load: `tsx bench/profile.ts [jwt|token|bare] [seconds] [connections] [rate]`
 * (rate: a fixed arrival rate in req/s; 0 or absent: as fast as the server goes).
 * Starts the upstream and the server child with --cpu-prof, warms it up for 2 s, loads it with
 * autocannon, and prints the top self-time functions of the load window only (start-up and
 * module loading left out) as CPU µs per request, plus the totals by owner (node internals,
 * src/, each package). The profile is kept in bench-results/*.cpuprofile.
 */
import { mkdir, mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { SourceMap } from 'node:module';
import { SERVERS_BUNDLE, startServer, stopServer } from './spawn.ts';
import { createSmallWorld } from './world.ts';

const [mode = 'jwt', seconds = '6', conns = '32', rate = '0'] = process.argv.slice(2);
const fixed = Number(rate) > 0 ? { overallRate: Number(rate) } : {};
const dir = await mkdtemp(join(tmpdir(), 'gate-prof-'));
await mkdir('bench-results', { recursive: true });

const upstream = await startServer('upstream');
const targets = await createSmallWorld(join(dir, 'small.db'));
const before = new Set(await readdir('bench-results'));
const prof = ['--cpu-prof', '--cpu-prof-dir', 'bench-results'];
const server =
  mode === 'bare' ? await startServer('bare-proxy', [upstream.url], prof) : await startServer('gateway', [upstream.url, join(dir, 'small.db')], prof);
const headers = mode === 'jwt' ? { authorization: `Bearer ${targets.jwt}` } : { authorization: targets.basic };
const path = mode === 'token' ? targets.tokenPath : targets.jwtPath;
const connections = Number(conns);
await autocannon({ url: server.url + path, headers, connections, duration: 2, ...fixed });
const loadStart = Date.now();
const result = await autocannon({ url: server.url + path, headers, connections, duration: Number(seconds), ...fixed });
const loadEnd = Date.now();
const stopAt = Date.now();
console.log(`${mode}: ${(result.requests.total / Number(seconds)).toFixed(0)} req/s, non-2xx ${result.non2xx}`);
await stopServer(server);
await stopServer(upstream);
const file = (await readdir('bench-results')).find((f) => f.endsWith('.cpuprofile') && !before.has(f))!;
const profile = JSON.parse(await readFile(join('bench-results', file), 'utf8')) as {
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount: number }[];
};
// The load window in profile time (µs): the profile ends when the server exits, shortly after stopAt.
const endUs = profile.endTime - (Date.now() - stopAt) * 1000;
const windowStart = endUs - (stopAt - loadStart) * 1000;
const windowEnd = endUs - (stopAt - loadEnd) * 1000;
// The servers run as one compiled bundle: name each frame by its source file (src/…, bench/…).
const map = new SourceMap(JSON.parse(await readFile(`${SERVERS_BUNDLE}.map`, 'utf8')));
for (const n of profile.nodes) {
  if (!n.callFrame.url.endsWith(SERVERS_BUNDLE.split('/').pop()!)) continue;
  const hit = map.findEntry(n.callFrame.lineNumber, (n.callFrame as { columnNumber?: number }).columnNumber ?? 0) as { originalSource?: string; originalLine?: number };
  if (hit.originalSource) {
    n.callFrame.url = hit.originalSource.replace(/^(\.\.\/)+/, 'file:///work/');
    n.callFrame.lineNumber = hit.originalLine ?? n.callFrame.lineNumber;
  }
}
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const keyOf = (n: (typeof profile.nodes)[number]) =>
  `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(src|bench)\//, '$1/')}:${n.callFrame.lineNumber}`;
const ownerOf = (url: string) => {
  if (url === '') return '(native / runtime)';
  if (url.startsWith('node:')) return 'node internals';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const m = /\/(src|bench)\/(.*?)(?:\/[^/]*)?$/.exec(url);
  return m ? `${m[1]}/${m[2]}` : url;
};
const self = new Map<string, number>();
const owners = new Map<string, number>();
let t = profile.startTime;
let busy = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const delta = profile.timeDeltas[i] ?? 0;
  t += delta;
  if (t < windowStart || t > windowEnd) continue;
  const n = byId.get(profile.samples[i]!)!;
  if (n.callFrame.functionName === '(idle)') continue;
  busy += delta;
  self.set(keyOf(n), (self.get(keyOf(n)) ?? 0) + delta);
  owners.set(ownerOf(n.callFrame.url), (owners.get(ownerOf(n.callFrame.url)) ?? 0) + delta);
}
// Inclusive time of the gateway's stages: a sample counts for a stage when a frame of it is on the stack
// (synchronous parts only: after an await the stack starts again at the microtask queue).
const STAGES: [label: string, file: string, fn: RegExp][] = [
  ['listener (whole synchronous turn of a request)', 'src/server.ts', /^listener$/],
  ['hygiene: canonical path', 'src/http/canonical-path.ts', /^canonicalizeTarget$/],
  ['hygiene: header scan', 'src/pipeline/hygiene.ts', /^checkHygiene$/],
  ['route lookup', 'src/pipeline/route.ts', /^matchRoute$/],
  ['decision record + path redaction', 'src/log/decision.ts', /^(newDecision|redactPath)$/],
  ['authentication (JWT cache / token lookup)', 'src/authn/', /./],
  ['role lookup (db)', 'src/db/', /./],
  ['libsql', 'libsql/', /./],
  ['decision table', 'src/policy/decision-table.ts', /./],
  ['decision log (line + write)', 'src/log/decision-log.ts', /./],
  ['identity headers', 'src/pipeline/identity.ts', /^identityHeaders$/],
  ['forwarded header lists', 'src/pipeline/forward-headers.ts', /^(upstreamRequestHeaders|downstreamResponseHeaders|invalidResponseHead)$/],
  ['forward (request start, incl. http.request)', 'src/pipeline/forward.ts', /^forward$/],
  ['upstream response relay (forward.ts listeners)', 'src/pipeline/forward.ts', /^$/],
  ['metrics / spans at close', 'src/telemetry/', /./],
  ['garbage collector', '', /^\(garbage collector\)$/],
];
const parent = new Map<number, number>();
for (const n of profile.nodes as ((typeof profile.nodes)[number] & { children?: number[] })[]) for (const c of n.children ?? []) parent.set(c, n.id);
const stageUs = new Map<string, number>();
t = profile.startTime;
for (let i = 0; i < profile.samples.length; i++) {
  const delta = profile.timeDeltas[i] ?? 0;
  t += delta;
  if (t < windowStart || t > windowEnd) continue;
  const hit = new Set<string>();
  for (let id: number | undefined = profile.samples[i]!; id !== undefined; id = parent.get(id)) {
    const f = byId.get(id)!.callFrame;
    for (const [label, file, fn] of STAGES) if ((file === '' ? f.url === '' : f.url.includes(file)) && fn.test(f.functionName)) hit.add(label);
  }
  for (const label of hit) stageUs.set(label, (stageUs.get(label) ?? 0) + delta);
}
const requests = result.requests.total;
const us = (v: number) => (v / requests).toFixed(2).padStart(7);
console.log(`busy CPU in the load window: ${us(busy)} µs per request (main thread only)`);
for (const [k, v] of [...owners.entries()].sort((a, b) => b[1] - a[1])) console.log(`${us(v)}  ${k}`);
console.log('\ninclusive, by stage:');
for (const [label] of STAGES) console.log(`${us(stageUs.get(label) ?? 0)}  ${label}`);
console.log('\nself time, by function:');
for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 45)) console.log(`${us(v)}  ${k}`);
console.log(`profile: bench-results/${file}`);
