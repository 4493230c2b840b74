/**
 * `npm run bench` — measures, in ONE run, against the same upstream:
 *   (a) the upstream directly          (b) a bare node:http keep-alive reverse proxy
 *   (c) a Hono app with hono/proxy     (d) the gateway, forwarded route, user JWT
 *   (e) the gateway, /repo/packages.json, project token
 * throughput at a fixed number of connections and latency at a fixed arrival rate
 * (half of (b)'s capacity), as ratios to (b); then (d) and (e) again at 1 M
 * memberships; micro-benchmarks of the decision, JWT verification and role lookup;
 * start-up to ready. First, the cost ledger (bench/ledger.ts): CPU µs per request of each
 * server (bare node:http and undici proxies, nginx, a Cerbos-per-request proxy, hono/proxy,
 * the gateway) and of the gateway with each stage replaced by a stand-in. Prints markdown
 * tables and writes JSON.
 *
 *   npm run bench                   # full run
 *   npm run bench -- --quick        # short durations, for a smoke run
 *   npm run bench -- --no-scale     # skip the 1 M-membership database
 *   npm run bench -- --only ledger  # the cost ledger alone (npm run bench:ledger)
 *   npm run bench -- --no-ledger    # everything but the cost ledger
 *   npm run bench -- --only workers # serve --workers 1 against --workers 2 alone
 *   npm run bench -- --ledger-rate 1500   # the ledger at a fixed arrival rate
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { check, load, summarize, type LoadResult, type Measured } from './load.ts';
import { killAll, startServer, stopServer as stop } from './spawn.ts';
import { renderLedger, runLedger, type LedgerResult } from './ledger.ts';
import { microBenchmarks, startupBenchmark, type MicroResults } from './micro.ts';
import { profileServer, renderProfiles, type ProfileReport } from './profile.ts';
import { startServe } from './workers.ts';
import { countRows, createScaleWorld, createSmallWorld, SCALE, type BenchTargets } from './world.ts';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    'no-scale': { type: 'boolean', default: false },
    out: { type: 'string' },
    only: { type: 'string' },
    'no-ledger': { type: 'boolean', default: false },
    'ledger-rate': { type: 'string' },
    connections: { type: 'string' },
  },
});

const QUICK = args.quick === true;
if (args.only !== undefined && args.only !== 'ledger' && args.only !== 'workers') throw new Error(`--only takes "ledger" or "workers", not "${args.only}"`);
const LEDGER_ONLY = args.only === 'ledger';
const WORKERS_ONLY = args.only === 'workers';
const OUT = args.out ?? (LEDGER_ONLY ? 'bench-results/ledger.json' : WORKERS_ONLY ? 'bench-results/workers.json' : 'bench-results/latest.json');
const DURATION_S = QUICK ? 2 : 8;
const WARMUP_S = QUICK ? 1 : 2;
const CONNECTIONS = Number(args.connections ?? 32);
/** Scenarios are measured in interleaved rounds and the median is kept: this machine drifts. */
const ROUNDS = Number(args.rounds ?? (QUICK ? 1 : 3));
const log = (s: string) => process.stderr.write(s + '\n');

type Scenario = { name: string; url: string; headers: Record<string, string> };

/** Throughput of each scenario, interleaved over ROUNDS rounds; median per scenario. */
async function throughputRounds(scenarios: Scenario[]): Promise<Measured[]> {
  for (const sc of scenarios) await load(sc.url, sc.headers, { durationS: WARMUP_S, connections: CONNECTIONS });
  const results: LoadResult[][] = scenarios.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, sc] of scenarios.entries()) {
      const r = check(sc.name, await load(sc.url, sc.headers, { durationS: DURATION_S, connections: CONNECTIONS }));
      results[i]!.push(r);
      log(`  ${sc.name} (round ${round + 1}/${ROUNDS}): ${r.rps.toFixed(0)} req/s`);
    }
  }
  return results.map((r) => summarize(r, 'rps'));
}

/** Latency of each scenario at a fixed arrival rate, interleaved; median p50 per scenario. */
/** Latency of each scenario, interleaved; median p50 per scenario. `rate` undefined: one connection, one request at a time. */
async function latencyRounds(scenarios: Scenario[], rate: number | undefined): Promise<Measured[]> {
  const results: LoadResult[][] = scenarios.map(() => []);
  const how = rate === undefined ? { connections: 1 } : { connections: 16, rate };
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, sc] of scenarios.entries()) {
      const r = check(sc.name, await load(sc.url, sc.headers, { durationS: DURATION_S, ...how }));
      results[i]!.push(r);
      log(`  ${sc.name} @ ${rate === undefined ? 'one at a time' : `${rate} req/s`} (round ${round + 1}/${ROUNDS}): p50 ${r.p50_ms.toFixed(3)} ms, p99 ${r.p99_ms.toFixed(3)} ms`);
    }
  }
  return results.map((r) => summarize(r, 'p50_ms'));
}

function rssOf(pid: number): Promise<{ rss_mb: number; hwm_mb: number }> {
  return readFile(`/proc/${pid}/status`, 'utf8').then((s) => {
    const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN);
    return { rss_mb: kb('VmRSS') / 1024, hwm_mb: kb('VmHWM') / 1024 };
  });
}

const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'gate-bench-'));
  const started = new Date().toISOString();
  log(`Packagento Gate benchmark (${QUICK ? 'quick' : 'full'}): ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`);
  try {
    const upstream = await startServer('upstream');
    const small = await createSmallWorld(join(work, 'small.db'));
    const machine = { cores: cpus().length, model: cpus()[0]?.model, memory_gib: Math.round(totalmem() / 2 ** 30), node: process.version };
    const plain = { accept: 'application/json' };
    const jwtHeaders = { ...plain, authorization: `Bearer ${small.jwt}` };
    const tokenHeaders = { ...plain, authorization: small.basic };

    // Every core (issue #13): `serve --workers 1` and `--workers 2`, the CLI as shipped, same upstream.
    const workerRounds = async () => {
      log(`serve --workers 1 and 2, JWT route, ${CONNECTIONS} connections, ${ROUNDS} interleaved round(s):`);
      const one = await startServe(1, upstream.url, join(work, 'small.db'));
      const two = await startServe(2, upstream.url, join(work, 'small.db'));
      const [w1, w2] = await throughputRounds([
        { name: 'serve --workers 1', url: one.url + small.jwtPath, headers: jwtHeaders },
        { name: 'serve --workers 2', url: two.url + small.jwtPath, headers: jwtHeaders },
      ]);
      await stop(two);
      await stop(one);
      return { one: w1!, two: w2!, ratio: w2!.rps / w1!.rps };
    };
    if (WORKERS_ONLY) {
      const workers = await workerRounds();
      await stop(upstream);
      await mkdir('bench-results', { recursive: true });
      await writeFile(OUT, JSON.stringify({ started, machine, workers }, null, 2) + '\n');
      process.stdout.write(renderWorkers({ machine, workers }) + '\n');
      log(`JSON written to ${OUT}`);
      return;
    }

    let ledger: LedgerResult | undefined;
    if (!args['no-ledger']) {
      await mkdir('bench-results', { recursive: true });
      ledger = await runLedger({
        quick: QUICK,
        work,
        cacheDir: 'bench-results',
        upstream,
        dbFile: join(work, 'small.db'),
        targets: small,
        log,
        ...(args['ledger-rate'] ? { rate: Number(args['ledger-rate']) } : {}),
      });
    }
    if (LEDGER_ONLY) {
      await stop(upstream);
      await writeFile(OUT, JSON.stringify({ started, machine, ledger }, null, 2) + '\n');
      process.stdout.write(`### Packagento Gate cost ledger — ${started}\n\n${machine.cores} cores (${machine.model}), ${machine.memory_gib} GiB, Node ${machine.node}.\n\n${renderLedger(ledger!)}\n`);
      log(`JSON written to ${OUT}`);
      return;
    }
    const bare = await startServer('bare-proxy', [upstream.url]);
    const hono = await startServer('hono-proxy', [upstream.url]);
    const gateway = await startServer('gateway', [upstream.url, join(work, 'small.db')]);

    log(`throughput, ${CONNECTIONS} connections, ${DURATION_S} s each, ${ROUNDS} interleaved round(s):`);
    const [ta, tb, tc, td, te] = await throughputRounds([
      { name: '(a) upstream', url: upstream.url + small.jwtPath, headers: plain },
      { name: '(b) bare node:http proxy', url: bare.url + small.jwtPath, headers: plain },
      { name: '(c) hono/proxy app', url: hono.url + small.jwtPath, headers: plain },
      { name: '(d) gateway, user JWT', url: gateway.url + small.jwtPath, headers: jwtHeaders },
      { name: '(e) gateway, project token', url: gateway.url + small.tokenPath, headers: tokenHeaders },
    ]);
    const t = { a_upstream: ta!, b_bare_proxy: tb!, c_hono_proxy: tc!, d_gateway_jwt: td!, e_gateway_token: te! };

    const rate = Math.max(100, Math.round(t.b_bare_proxy.rps / 2));
    log(`latency at a fixed arrival rate of ${rate} req/s (half of (b)), ${DURATION_S} s each:`);
    const [la, lb, ld, le] = await latencyRounds(
      [
        { name: '(a) upstream', url: upstream.url + small.jwtPath, headers: plain },
        { name: '(b) bare proxy', url: bare.url + small.jwtPath, headers: plain },
        { name: '(d) gateway JWT', url: gateway.url + small.jwtPath, headers: jwtHeaders },
        { name: '(e) gateway token', url: gateway.url + small.tokenPath, headers: tokenHeaders },
      ],
      rate,
    );
    const l = { a_upstream: la!, b_bare_proxy: lb!, d_gateway_jwt: ld!, e_gateway_token: le! };
    // Half the bare proxy's capacity can be above one gateway process's own: then the run above
    // measures a queue. And at any fixed rate autocannon releases requests in bursts that queue
    // behind each other. One connection, one request at a time, says what the path itself adds.
    log(`latency one request at a time (1 connection), ${DURATION_S} s each:`);
    const [lowB, lowD, lowE] = await latencyRounds(
      [
        { name: '(b) bare proxy', url: bare.url + small.jwtPath, headers: plain },
        { name: '(d) gateway JWT', url: gateway.url + small.jwtPath, headers: jwtHeaders },
        { name: '(e) gateway token', url: gateway.url + small.tokenPath, headers: tokenHeaders },
      ],
      undefined,
    );
    const gatewayRss = await rssOf(gateway.pid);
    await stop(gateway);

    const workers = await workerRounds();

    let scale: Record<string, unknown> | undefined;
    if (!args['no-scale']) {
      await mkdir('bench-results', { recursive: true });
      const scaleFile = join('bench-results', 'scale.db');
      log(`scale database (${SCALE.workspaces * SCALE.membersPerWorkspace} memberships):`);
      const big: BenchTargets & { generatedMs: number | null } = await createScaleWorld(scaleFile, log);
      const rows = countRows(scaleFile);
      const scaled = await startServer('gateway', [upstream.url, scaleFile]);
      // Interleaved with the small database's gateway, so "within 10 % of small" compares like with like.
      const again = await startServer('gateway', [upstream.url, join(work, 'small.db')]);
      const [sd, se, sdSmall, seSmall] = await throughputRounds([
        { name: '(d) gateway JWT @ scale', url: scaled.url + big.jwtPath, headers: { ...plain, authorization: `Bearer ${big.jwt}` } },
        { name: '(e) gateway token @ scale', url: scaled.url + big.tokenPath, headers: { ...plain, authorization: big.basic } },
        { name: '(d) gateway JWT, small', url: again.url + small.jwtPath, headers: jwtHeaders },
        { name: '(e) gateway token, small', url: again.url + small.tokenPath, headers: tokenHeaders },
      ]);
      await stop(again);
      const rss = await rssOf(scaled.pid);
      await stop(scaled);
      const startup = await startupBenchmark(scaleFile, upstream.url);
      scale = {
        rows,
        generated_ms: big.generatedMs,
        d_gateway_jwt: sd,
        e_gateway_token: se,
        d_small_same_rounds: sdSmall,
        e_small_same_rounds: seSmall,
        rss,
        startup_ms: startup,
      };
    }

    log('micro-benchmarks:');
    const micro: MicroResults = await microBenchmarks(join(work, 'small.db'), small, log);
    const startupSmall = await startupBenchmark(join(work, 'startup.db'), upstream.url, true);

    // The ledger's breakdown that adds up: each server's own main thread, by stage.
    log('main-thread CPU by stage (V8 sampling profiler):');
    const profiles: ProfileReport[] = [];
    for (const mode of ['bare', 'jwt', 'token'] as const) {
      profiles.push(await profileServer({ mode, seconds: QUICK ? 2 : 6, connections: CONNECTIONS, upstream, dbFile: join(work, 'small.db'), targets: small }));
      log(`  ${mode}: ${profiles.at(-1)!.busy_us.toFixed(1)} µs per request on the main thread (${profiles.at(-1)!.file})`);
    }

    for (const s of [upstream, bare, hono]) await stop(s);

    const ratio = (x: LoadResult) => x.rps / t.b_bare_proxy.rps;
    const result = {
      started,
      machine,
      settings: { quick: QUICK, duration_s: DURATION_S, connections: CONNECTIONS, rounds: ROUNDS, latency_rate: rate },
      throughput: Object.fromEntries(Object.entries(t).map(([k, v]) => [k, { ...v, ratio_to_b: ratio(v) }])),
      latency: l,
      added_latency_ms: {
        d_jwt: { p50: l.d_gateway_jwt.p50_ms - l.b_bare_proxy.p50_ms, p99: l.d_gateway_jwt.p99_ms - l.b_bare_proxy.p99_ms },
        e_token: { p50: l.e_gateway_token.p50_ms - l.b_bare_proxy.p50_ms, p99: l.e_gateway_token.p99_ms - l.b_bare_proxy.p99_ms },
      },
      latency_serial: {
        b_bare_proxy: lowB!,
        d_gateway_jwt: lowD!,
        e_gateway_token: lowE!,
        added_ms: {
          d_jwt: { p50: lowD!.p50_ms - lowB!.p50_ms, p99: lowD!.p99_ms - lowB!.p99_ms },
          e_token: { p50: lowE!.p50_ms - lowB!.p50_ms, p99: lowE!.p99_ms - lowB!.p99_ms },
        },
      },
      gateway_rss_small: gatewayRss,
      workers,
      scale,
      micro,
      startup_ms: startupSmall,
      profiles: profiles.map(({ top: _top, owners: _owners, ...rest }) => rest),
      ledger,
    };
    await mkdir('bench-results', { recursive: true });
    await writeFile(OUT, JSON.stringify(result, null, 2) + '\n');
    process.stdout.write(renderMarkdown(result) + '\n');
    log(`JSON written to ${OUT}`);
  } finally {
    killAll();
    await rm(work, { recursive: true, force: true });
  }
}

function renderWorkers(r: any): string {
  const w = r.workers;
  return (
    `\`serve --workers\` (the shipped CLI, JWT route): 1 worker ${fmt(w.one.rps)} req/s (rounds ${w.one.rounds.map((x: number) => fmt(x)).join(', ')}), ` +
    `2 workers ${fmt(w.two.rps)} req/s (rounds ${w.two.rounds.map((x: number) => fmt(x)).join(', ')}): ${fmt(w.ratio, 2)} ×; ` +
    `the load generator and the upstream share the same ${r.machine.cores} cores.`
  );
}

function renderMarkdown(r: any): string {
  const t = r.throughput;
  const l = r.latency;
  const lines = [
    `### Packagento Gate benchmark — ${r.started}`,
    '',
    `${r.machine.cores} cores (${r.machine.model}), ${r.machine.memory_gib} GiB, Node ${r.machine.node}; ` +
      `${r.settings.connections} connections × ${r.settings.duration_s} s, median of ${r.settings.rounds} interleaved round(s); latency at ${r.settings.latency_rate} req/s.`,
    '',
    '| scenario | req/s (median) | × (b) bare proxy | × (c) hono/proxy | p50 ms @ rate | p99 ms @ rate | req/s by round |',
    '|---|---:|---:|---:|---:|---:|---|',
  ];
  const row = (name: string, key: string, lat?: any) =>
    lines.push(
      `| ${name} | ${fmt(t[key].rps)} | ${fmt(t[key].ratio_to_b, 2)} | ${fmt(t[key].rps / t.c_hono_proxy.rps, 2)} | ${lat ? fmt(lat.p50_ms, 3) : '—'} | ${lat ? fmt(lat.p99_ms, 3) : '—'} | ${t[key].rounds.map((x: number) => fmt(x)).join(', ')} |`,
    );
  row('(a) upstream directly', 'a_upstream', l.a_upstream);
  row('(b) bare node:http proxy', 'b_bare_proxy', l.b_bare_proxy);
  row('(c) Hono + hono/proxy', 'c_hono_proxy');
  row('(d) gateway, user JWT', 'd_gateway_jwt', l.d_gateway_jwt);
  row('(e) gateway, project token', 'e_gateway_token', l.e_gateway_token);
  lines.push('');
  lines.push(
    `Added latency over (b) at half its capacity: JWT p50 ${fmt(r.added_latency_ms.d_jwt.p50, 3)} ms, p99 ${fmt(r.added_latency_ms.d_jwt.p99, 3)} ms; ` +
      `token p50 ${fmt(r.added_latency_ms.e_token.p50, 3)} ms, p99 ${fmt(r.added_latency_ms.e_token.p99, 3)} ms.`,
  );
  if (r.latency_serial) {
    const lo = r.latency_serial;
    lines.push('');
    lines.push(
      `One request at a time (1 connection, no queue): bare proxy p50 ${fmt(lo.b_bare_proxy.p50_ms, 3)} / p99 ${fmt(lo.b_bare_proxy.p99_ms, 3)} ms; ` +
        `added by the gateway: JWT p50 ${fmt(lo.added_ms.d_jwt.p50, 3)} ms, p99 ${fmt(lo.added_ms.d_jwt.p99, 3)} ms; ` +
        `token p50 ${fmt(lo.added_ms.e_token.p50, 3)} ms, p99 ${fmt(lo.added_ms.e_token.p99, 3)} ms.`,
    );
  }
  if (r.workers) lines.push('', renderWorkers(r));
  if (r.scale) {
    const s = r.scale;
    lines.push('');
    lines.push(
      `At scale (${s.rows.memberships} memberships, ${s.rows.workspaces} workspaces, ${s.rows.projects} projects, ${s.rows.tokens} tokens): ` +
        `(d) ${fmt(s.d_gateway_jwt.rps)} req/s = ${fmt(s.d_gateway_jwt.rps / s.d_small_same_rounds.rps, 2)} × the small database in the same rounds; ` +
        `(e) ${fmt(s.e_gateway_token.rps)} req/s = ${fmt(s.e_gateway_token.rps / s.e_small_same_rounds.rps, 2)} × small; ` +
        `RSS ${fmt(s.rss.rss_mb)} MB (peak ${fmt(s.rss.hwm_mb)} MB); start-up to ready ${fmt(s.startup_ms.median)} ms.`,
    );
  }
  const m = r.micro;
  lines.push('');
  lines.push('| micro-benchmark | p50 µs | p99 µs | mean µs | × faster |');
  lines.push('|---|---:|---:|---:|---:|');
  const mrow = (name: string, x: any, speedup?: number) =>
    lines.push(`| ${name} | ${fmt(x.p50_us, 3)} | ${fmt(x.p99_us, 3)} | ${fmt(x.mean_us, 3)} | ${speedup === undefined ? '' : fmt(speedup, 1)} |`);
  mrow('decision: stock node-casbin enforce', m.decision.casbin);
  mrow('decision: compiled table (gateway)', m.decision.table, m.decision.casbin.mean_us / m.decision.table.mean_us);
  mrow('JWT verify: cold (jose every time)', m.jwt.cold);
  mrow('JWT verify: cached (gateway)', m.jwt.cached, m.jwt.cold.mean_us / m.jwt.cached.mean_us);
  mrow('role lookup: @libsql/client execute', m.roles.client);
  mrow('role lookup: prepared, unchanged database (gateway)', m.roles.prepared, m.roles.client.mean_us / m.roles.prepared.mean_us);
  mrow('role lookup: prepared, first read after a commit (gateway)', m.roles.preparedMiss, m.roles.client.mean_us / m.roles.preparedMiss.mean_us);
  lines.push('');
  lines.push(
    `Start-up to ready (migrations on a fresh file, policy load, table build and verification, listen): median ${fmt(r.startup_ms.median)} ms of ${r.startup_ms.runs.length} runs. ` +
      `Gateway RSS after the small runs: ${fmt(r.gateway_rss_small.rss_mb)} MB.`,
  );
  if (r.profiles) lines.push('', renderProfiles(r.profiles));
  if (r.ledger) lines.push('', renderLedger(r.ledger));
  return lines.join('\n');
}

await main();
