/**
 * Main-thread CPU by stage, from V8's sampling profiler under load (the breakdown of the cost
 * ledger that adds up: one process's own time). `npm run bench` runs it for the bare proxy and
 * both Gate routes; alone: `tsx bench/profile.ts [jwt|token|bare] [seconds] [connections] [rate]`
 * (rate: a fixed arrival rate in req/s; 0 or absent: as fast as the server goes), which also
 * prints the totals by owner (node internals, src/, each package) and the top self-time functions.
 * The server runs with --cpu-prof, is warmed up for 2 s, then loaded; only the load window is
 * counted (start-up and module loading left out). The profile is kept in bench-results/*.cpuprofile.
 */
import { mkdir, mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import { SourceMap } from 'node:module';
import { SERVERS_BUNDLE, killAll, startServer, stopServer, type BenchServer } from './spawn.ts';
import { createSmallWorld, type BenchTargets } from './world.ts';

export type ProfileMode = 'jwt' | 'token' | 'bare';

export interface ProfileReport {
  mode: ProfileMode;
  rps: number;
  requests: number;
  /** Main-thread CPU in the load window, µs per request (idle samples left out). */
  busy_us: number;
  /** Inclusive µs per request of each stage (STAGES below), plus the socket and pipe writes. */
  stages: { label: string; us: number }[];
  owners: [string, number][];
  top: [string, number][];
  file: string;
}

/** Stages by the frames on the stack (synchronous parts only: after an await the stack starts again at the microtask queue). */
const STAGES: [label: string, file: string, fn: RegExp][] = [
  ['listener (synchronous part of a request\'s first turn)', 'src/server.ts', /^listener$/],
  ['hygiene: canonical path', 'src/http/canonical-path.ts', /^canonicalizeTarget$/],
  ['hygiene: header scan', 'src/pipeline/hygiene.ts', /^checkHygiene$/],
  ['route lookup', 'src/pipeline/route.ts', /^matchRoute$/],
  ['decision record + path redaction', 'src/log/decision.ts', /^(newDecision|redactPath)$/],
  ['authentication (JWT cache / token lookup)', 'src/authn/', /./],
  ['role lookup (src/db, incl. libsql)', 'src/db/', /./],
  ['  of which libsql', 'libsql/', /./],
  ['decision table', 'src/policy/decision-table.ts', /./],
  ['decision log (line + batched write)', 'src/log/decision-log.ts', /./],
  ['identity headers', 'src/pipeline/identity.ts', /^identityHeaders$/],
  ['forwarded header lists', 'src/pipeline/forward-headers.ts', /^(upstreamRequestHeaders|downstreamResponseHeaders|invalidResponseHead)$/],
  ['forward: request start (incl. http.request)', 'src/pipeline/forward.ts', /^forward$/],
  ['forward: response relay (its listeners)', 'src/pipeline/forward.ts', /^$/],
  ['metrics / spans at close', 'src/telemetry/', /./],
  ['garbage collector', '', /^\(garbage collector\)$/],
];
/** Natives whose self time is the write(2)/writev(2) itself (a loopback write also delivers and wakes the reader). */
const WRITES = /^(writev|writeLatin1String|writeUtf8String|writeAsciiString|writeUcs2String|writeBuffer)$/;
export const WRITES_LABEL = 'socket and pipe writes (system calls)';

export async function profileServer(o: {
  mode: ProfileMode;
  seconds: number;
  connections: number;
  rate?: number;
  upstream: BenchServer;
  dbFile: string;
  targets: BenchTargets;
}): Promise<ProfileReport> {
  const { mode, upstream, targets } = o;
  const fixed = o.rate ? { overallRate: o.rate } : {};
  await mkdir('bench-results', { recursive: true });
  const before = new Set(await readdir('bench-results'));
  const prof = ['--cpu-prof', '--cpu-prof-dir', 'bench-results'];
  const server = mode === 'bare' ? await startServer('bare-proxy', [upstream.url], prof) : await startServer('gateway', [upstream.url, o.dbFile], prof);
  const headers: Record<string, string> = mode === 'jwt' ? { authorization: `Bearer ${targets.jwt}` } : mode === 'token' ? { authorization: targets.basic } : {};
  const path = mode === 'token' ? targets.tokenPath : targets.jwtPath;
  const connections = o.connections;
  await autocannon({ url: server.url + path, headers, connections, duration: 2, ...fixed });
  const loadStart = Date.now();
  const result = await autocannon({ url: server.url + path, headers, connections, duration: o.seconds, ...fixed });
  const loadEnd = Date.now();
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`profile ${mode}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  await stopServer(server);
  const exitedAt = Date.now();
  // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread.
  const file = (await readdir('bench-results')).find((f) => !before.has(f) && /\.0\.\d+\.cpuprofile$/.test(f));
  if (file === undefined) throw new Error(`profile ${mode}: the server wrote no main-thread profile to bench-results/`);
  const profile = JSON.parse(await readFile(join('bench-results', file), 'utf8')) as {
    startTime: number;
    endTime: number;
    samples: number[];
    timeDeltas: number[];
    nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount: number }[];
  };
  // The load window in profile time (µs): the profile ends when the server exits (exitedAt, give or take the exit itself).
  const endUs = profile.endTime;
  const windowStart = endUs - (exitedAt - loadStart) * 1000;
  const windowEnd = endUs - (exitedAt - loadEnd) * 1000;
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
  let writes = 0;
  for (const [key, v] of self) if (WRITES.test(key.split(' ')[0]!) && key.endsWith(' :-1')) writes += v;
  const per = (v: number) => v / requests;
  return {
    mode,
    rps: requests / o.seconds,
    requests,
    busy_us: per(busy),
    stages: [...STAGES.map(([label]) => ({ label, us: per(stageUs.get(label) ?? 0) })), { label: WRITES_LABEL, us: per(writes) }],
    owners: [...owners.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, per(v)] as [string, number]),
    top: [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 45).map(([k, v]) => [k, per(v)] as [string, number]),
    file: join('bench-results', file),
  };
}

/** The stage table for bench/run.ts: one column per profiled server. */
export function renderProfiles(reports: ProfileReport[]): string {
  const name = (m: ProfileMode) => (m === 'bare' ? 'bare `node:http` proxy' : m === 'jwt' ? 'Gate, JWT' : 'Gate, token');
  const f = (n: number) => (n >= 0.005 ? n.toFixed(2) : '—');
  const lines = [
    '#### Main-thread CPU by stage (V8 sampling profiler, µs per request, inclusive)',
    '',
    `Each server alone under load (${reports.map((r) => `${name(r.mode)} ${r.rps.toFixed(0)} req/s`).join(', ')}); only the main thread is sampled.`,
    '',
    `| stage | ${reports.map((r) => name(r.mode)).join(' | ')} |`,
    `|---|${reports.map(() => '---:').join('|')}|`,
    `| whole main thread | ${reports.map((r) => f(r.busy_us)).join(' | ')} |`,
  ];
  for (const [i, s] of reports[0]!.stages.entries()) lines.push(`| ${s.label} | ${reports.map((r) => f(r.stages[i]!.us)).join(' | ')} |`);
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [mode = 'jwt', seconds = '6', conns = '32', rate = '0'] = process.argv.slice(2);
  if (mode !== 'jwt' && mode !== 'token' && mode !== 'bare') throw new Error(`mode: jwt, token or bare, not "${mode}"`);
  const dir = await mkdtemp(join(tmpdir(), 'gate-prof-'));
  const upstream = await startServer('upstream');
  const targets = await createSmallWorld(join(dir, 'small.db'));
  try {
    const r = await profileServer({ mode, seconds: Number(seconds), connections: Number(conns), rate: Number(rate) || undefined, upstream, dbFile: join(dir, 'small.db'), targets });
    const us = (v: number) => v.toFixed(2).padStart(7);
    console.log(`${mode}: ${r.rps.toFixed(0)} req/s`);
    console.log(`busy CPU in the load window: ${us(r.busy_us)} µs per request (main thread only)`);
    for (const [k, v] of r.owners) console.log(`${us(v)}  ${k}`);
    console.log('\ninclusive, by stage:');
    for (const s of r.stages) console.log(`${us(s.us)}  ${s.label}`);
    console.log('\nself time, by function:');
    for (const [k, v] of r.top) console.log(`${us(v)}  ${k}`);
    console.log(`profile: ${r.file}`);
  } finally {
    killAll();
  }
}
