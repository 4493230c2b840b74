/**
 * The cost ledger (issue #13): CPU µs per request of each server, measured side by side in
 * one run against the same upstream. Each server is its own process group (bench/spawn.ts);
 * its CPU is user + system time of the whole group from /proc (bench/cpu.ts), sampled before
 * and after a load round and divided by the requests it served. autocannon at 50 connections,
 * interleaved rounds, medians. Then the per-stage ledger: the gateway again with each stage
 * replaced by its cheapest stand-in (bench/ledger-gateway.ts), so each row says what that stage
 * costs in µs.
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { groupsCpuUs } from './cpu.ts';
import { CERBOS_VERSION, startCerbos, startNginx } from './external.ts';
import { STAGES, type Stage } from './ledger-gateway.ts';
import { check, load } from './load.ts';
import { startServer, stopServer, type BenchServer } from './spawn.ts';
import type { BenchTargets } from './world.ts';

export interface LedgerOptions {
  quick: boolean;
  rounds?: number;
  connections?: number;
  /** A fixed arrival rate (req/s over all connections) instead of as fast as each server goes. */
  rate?: number;
  /** Temporary files (nginx config, …). */
  work: string;
  /** Where the Cerbos package is cached (bench-results/). */
  cacheDir: string;
  upstream: BenchServer;
  dbFile: string;
  targets: BenchTargets;
  log: (s: string) => void;
}

/** One measured scenario: a server, a route, and the process groups its CPU is counted over. */
interface Scenario {
  key: string;
  name: string;
  url: string;
  headers: Record<string, string>;
  groups: number[];
}

export interface LedgerRow {
  key: string;
  name: string;
  rps: number;
  cpu_us: number;
  /** The upstream's own CPU per request in the same rounds (the same for every proxy, or something is off). */
  upstream_cpu_us: number;
  ratio_to_bare: number;
  rounds_cpu_us: number[];
  rounds_rps: number[];
}

export interface LedgerResult {
  settings: { duration_s: number; warmup_s: number; rounds: number; connections: number; rate: number | null };
  /** 1-minute load average before and after: CPU per request is only comparable on a quiet machine. */
  loadavg: { before: number; after: number };
  rows: LedgerRow[];
  /** Servers that could not be measured, and why. */
  skipped: Record<string, string>;
  versions: Record<string, string>;
  stages: { stage: string; jwt?: LedgerRow; token?: LedgerRow }[];
}

/** The per-stage ledger's gateway variants: a stand-in per stage, all of them at once, and the undici forwarder. */
const VARIANTS: { id: string; label: string; env: Record<string, string>; token: boolean }[] = [
  ...STAGES.map((s: Stage) => ({ id: s, label: s, env: { BENCH_STAGE_OFF: s }, token: s !== 'users' })),
  { id: 'all', label: 'all of the above', env: { BENCH_STAGE_OFF: 'all' }, token: true },
  { id: 'wiring', label: 'forwarder wiring (a minimal node:http forwarder, header filtering kept)', env: { BENCH_FORWARDER: 'simple' }, token: true },
  { id: 'undici', label: 'the minimal forwarder on undici (header filtering kept)', env: { BENCH_FORWARDER: 'undici' }, token: true },
];

const medianOf = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function runLedger(o: LedgerOptions): Promise<LedgerResult> {
  const durationS = o.quick ? 1.5 : 5;
  const warmupS = o.quick ? 1 : 2;
  const rounds = o.rounds ?? (o.quick ? 1 : 3);
  const connections = o.connections ?? 50;
  const rate = o.rate ? { rate: o.rate } : {};
  const { upstream, targets: t } = o;
  const loadBefore = loadavg()[0]!;
  const skipped: Record<string, string> = {};
  const versions: Record<string, string> = { node: process.version };
  const servers: BenchServer[] = [];
  const keep = <T extends BenchServer>(s: T) => (servers.push(s), s);

  const plain = { accept: 'application/json' };
  const jwt = { ...plain, authorization: `Bearer ${t.jwt}` };
  const token = { ...plain, authorization: t.basic };
  const scenarios: Scenario[] = [];
  const add = (key: string, name: string, s: BenchServer, path: string, headers: Record<string, string>, extraGroups: number[] = []) =>
    scenarios.push({ key, name, url: s.url + path, headers, groups: [s.pid, ...extraGroups] });

  try {
    add('upstream', 'the upstream directly', upstream, t.jwtPath, plain);
    add('bare', 'bare `node:http` keep-alive proxy', keep(await startServer('bare-proxy', [upstream.url])), t.jwtPath, plain);
    add('undici', 'bare undici proxy (`Pool.stream`)', keep(await startServer('undici-proxy', [upstream.url])), t.jwtPath, plain);

    const nginx = await startNginx(upstream.url, join(o.work, 'nginx'));
    if (nginx.ok) {
      versions['nginx'] = nginx.version;
      add('nginx', `nginx \`proxy_pass\`, upstream keep-alive, 1 worker (${nginx.version})`, keep(nginx.server), t.jwtPath, plain);
    } else skipped['nginx'] = nginx.reason;

    const pdp = await startCerbos(o.cacheDir);
    if (pdp.ok) {
      versions['cerbos'] = pdp.version;
      keep(pdp.server);
      const proxy = keep(await startServer('cerbos-proxy', [upstream.url, pdp.server.url]));
      add('cerbos', `\`node:http\` proxy asking Cerbos ${pdp.version} per request (proxy + PDP)`, proxy, t.jwtPath, plain, [pdp.server.pid]);
    } else skipped['cerbos'] = `Cerbos ${CERBOS_VERSION}: ${pdp.reason}`;

    add('hono', '`hono/proxy` app', keep(await startServer('hono-proxy', [upstream.url])), t.jwtPath, plain);
    const gate = keep(await startServer('gateway', [upstream.url, o.dbFile]));
    add('gate_jwt', 'Packagento Gate, user JWT (`GET …/licences`)', gate, t.jwtPath, jwt);
    add('gate_token', 'Packagento Gate, project token (`GET /repo/packages.json`)', gate, t.tokenPath, token);

    for (const v of VARIANTS) {
      const s = keep(await startServer('gateway', [upstream.url, o.dbFile], [], v.env));
      add(`stage_${v.id}_jwt`, `Gate JWT, ${v.label}`, s, t.jwtPath, jwt);
      if (v.token) add(`stage_${v.id}_token`, `Gate token, ${v.label}`, s, t.tokenPath, token);
    }

    o.log(`cost ledger: ${scenarios.length} scenarios, ${connections} connections, ${durationS} s each, ${rounds} interleaved round(s)`);
    for (const sc of scenarios) check(`${sc.name} (warm-up)`, await load(sc.url, sc.headers, { durationS: warmupS, connections, ...rate }));

    const cpu = scenarios.map(() => [] as number[]);
    const up = scenarios.map(() => [] as number[]);
    const rps = scenarios.map(() => [] as number[]);
    for (let round = 0; round < rounds; round++) {
      for (const [i, sc] of scenarios.entries()) {
        const groups = [...sc.groups, upstream.pid];
        const before = await groupsCpuUs(groups);
        const r = check(sc.name, await load(sc.url, sc.headers, { durationS, connections, ...rate }));
        const after = await groupsCpuUs(groups);
        const used = (ids: number[]) => ids.reduce((sum, g) => sum + after.get(g)! - before.get(g)!, 0);
        // The upstream-direct row counts the upstream once, as the server under test.
        cpu[i]!.push(used(sc.groups) / r.requests);
        up[i]!.push(used([upstream.pid]) / r.requests);
        rps[i]!.push(r.rps);
        o.log(`  ${sc.name} (round ${round + 1}/${rounds}): ${r.rps.toFixed(0)} req/s, ${(used(sc.groups) / r.requests).toFixed(1)} µs CPU/req`);
      }
    }

    const rows: LedgerRow[] = scenarios.map((sc, i) => ({
      key: sc.key,
      name: sc.name,
      rps: medianOf(rps[i]!),
      cpu_us: medianOf(cpu[i]!),
      upstream_cpu_us: medianOf(up[i]!),
      ratio_to_bare: NaN,
      rounds_cpu_us: cpu[i]!,
      rounds_rps: rps[i]!,
    }));
    const bare = rows.find((r) => r.key === 'bare')!;
    for (const r of rows) r.ratio_to_bare = r.cpu_us / bare.cpu_us;
    const byKey = new Map(rows.map((r) => [r.key, r]));
    const stages = VARIANTS.map((v) => ({
      stage: v.label,
      ...(byKey.get(`stage_${v.id}_jwt`) ? { jwt: byKey.get(`stage_${v.id}_jwt`)! } : {}),
      ...(byKey.get(`stage_${v.id}_token`) ? { token: byKey.get(`stage_${v.id}_token`)! } : {}),
    }));
    return {
      settings: { duration_s: durationS, warmup_s: warmupS, rounds, connections, rate: o.rate ?? null },
      loadavg: { before: loadBefore, after: loadavg()[0]! },
      rows: rows.filter((r) => !r.key.startsWith('stage_')),
      skipped,
      versions,
      stages,
    };
  } finally {
    for (const s of servers.reverse()) await stopServer(s);
  }
}

const f = (n: number | undefined, d = 1) => (n !== undefined && Number.isFinite(n) ? n.toFixed(d) : '—');
const signed = (n: number) => (Number.isFinite(n) ? (n >= 0 ? '+' : '−') + Math.abs(n).toFixed(1) : '—');

export function renderLedger(r: LedgerResult): string {
  const s = r.settings;
  const lines = [
    `#### Cost ledger: CPU per request`,
    '',
    `${s.connections} connections${s.rate ? ` at a fixed ${s.rate} req/s` : ''}, ${s.rounds} interleaved round(s) of ${s.duration_s} s after a ${s.warmup_s} s warm-up, medians. ` +
      `CPU = user + system time of the server's whole process group (/proc) ÷ requests served; ratios to the bare \`node:http\` proxy in the same run. ` +
      `Machine load average (1 min) ${f(r.loadavg.before, 2)} before, ${f(r.loadavg.after, 2)} after.`,
    '',
    '| server | req/s | CPU µs / request | × bare `node:http` | µs over bare | upstream µs / request | CPU µs by round |',
    '|---|---:|---:|---:|---:|---:|---|',
  ];
  const bareCpu = r.rows.find((x) => x.key === 'bare')!.cpu_us;
  for (const row of r.rows) {
    lines.push(
      `| ${row.name} | ${f(row.rps, 0)} | ${f(row.cpu_us)} | ${f(row.ratio_to_bare, 2)} | ${row.key === 'bare' ? '' : signed(row.cpu_us - bareCpu)} | ${row.key === 'upstream' ? '(itself)' : f(row.upstream_cpu_us)} | ${row.rounds_cpu_us.map((x) => f(x)).join(', ')} |`,
    );
  }
  for (const [name, why] of Object.entries(r.skipped)) lines.push(`| ${name} | — | ${why} | | | | |`);
  // The upstream does the same work for every proxy: when its cost per request moves a lot, so did the machine.
  const ups = r.rows.filter((x) => x.key !== 'upstream').map((x) => x.upstream_cpu_us);
  const spread = Math.max(...ups) / Math.min(...ups);
  if (r.loadavg.before > 3 || spread > 2) {
    lines.push(
      '',
      `**Noisy run**: load average ${f(r.loadavg.before, 2)}, the upstream's own CPU per request varied ${f(spread, 1)}× between rows; ` +
        'CPU per request rises when a process gets fewer requests per event-loop turn. Rerun on a quiet machine before quoting these numbers.',
    );
  }

  const gate = { jwt: r.rows.find((x) => x.key === 'gate_jwt')!, token: r.rows.find((x) => x.key === 'gate_token')! };
  const bare = r.rows.find((x) => x.key === 'bare')!;
  lines.push('', '#### Per-stage ledger: Gate with one stage replaced by its cheapest stand-in', '');
  lines.push('Saved = Gate − the variant, in CPU µs per request (positive: the stage costs that much). Single rounds are noisy to a few µs.', '');
  lines.push('| stage replaced | JWT µs / request | JWT saved µs | token µs / request | token saved µs |');
  lines.push('|---|---:|---:|---:|---:|');
  lines.push(`| none (Gate as served) | ${f(gate.jwt.cpu_us)} | | ${f(gate.token.cpu_us)} | |`);
  for (const st of r.stages) {
    lines.push(
      `| ${st.stage} | ${f(st.jwt?.cpu_us)} | ${st.jwt ? signed(gate.jwt.cpu_us - st.jwt.cpu_us) : '—'} | ${f(st.token?.cpu_us)} | ${st.token ? signed(gate.token.cpu_us - st.token.cpu_us) : '—'} |`,
    );
  }
  const all = r.stages.find((x) => x.stage === 'all of the above');
  lines.push('');
  if (all?.jwt && all.token) {
    lines.push(
      `With every stand-in, Gate still costs ${f(all.jwt.cpu_us)} µs (JWT) / ${f(all.token.cpu_us)} µs (token) against ${f(bare.cpu_us)} µs for the bare proxy: ` +
        `${signed(all.jwt.cpu_us - bare.cpu_us)} / ${signed(all.token.cpu_us - bare.cpu_us)} µs that no stand-in reaches yet (hygiene, routing, redaction, promise hops, the listener; see bench/README-ledger.md).`,
    );
  }
  const cerbos = r.rows.find((x) => x.key === 'cerbos');
  lines.push(
    `Targets (issue #13): Gate ≤ 1.18 × bare — JWT ${f(gate.jwt.ratio_to_bare, 2)} ×, token ${f(gate.token.ratio_to_bare, 2)} ×` +
      (cerbos ? `; ≥ 5 × cheaper than Cerbos-per-request — JWT ${f(cerbos.cpu_us / gate.jwt.cpu_us, 2)} ×, token ${f(cerbos.cpu_us / gate.token.cpu_us, 2)} ×.` : '; Cerbos not measured.'),
  );
  return lines.join('\n');
}
