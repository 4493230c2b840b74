/**
 * Micro-benchmarks, each against its own baseline measured in the same run:
 * decision (stock node-casbin enforce vs the compiled table), JWT verification
 * (jose every time vs the gateway's cache), role lookup (@libsql/client execute
 * vs the gateway's prepared statement), and start-up to ready.
 */
import { rm } from 'node:fs/promises';
import { ACTIONS, SUBJECTS, TARGET_ROLES, NO_TARGET } from '../src/domain.ts';
import { createCachedJwtVerifier } from '../src/authn/jwt-cache.ts';
import { createJwtVerifier } from '../src/authn/jwt.ts';
import { buildPolicyBundle } from '../src/policy/bundle.ts';
import { loadPolicySourceFromDir } from '../src/policy/source.ts';
import type { Target } from '../src/policy/decision-table.ts';
import { AccessRepo } from '../src/db/access-repo.ts';
import { createDb, openDb } from '../src/db/client.ts';
import { loadConfig, requireServeConfig } from '../src/config.ts';
import { startGateway } from '../src/main.ts';
import { BENCH_AUDIENCE, BENCH_ENCRYPTION_KEY, BENCH_ISSUER, BENCH_SECRET, type BenchTargets } from './world.ts';

export interface Stats {
  p50_us: number;
  p99_us: number;
  mean_us: number;
  n: number;
}

export interface MicroResults {
  decision: { casbin: Stats; table: Stats };
  jwt: { cold: Stats; cached: Stats };
  roles: { client: Stats; prepared: Stats; preparedMiss: Stats; hitRate: number };
}

function stats(samplesNs: Float64Array): Stats {
  const sorted = samplesNs.slice().sort();
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! / 1000;
  let sum = 0;
  for (const v of sorted) sum += v;
  return { p50_us: at(0.5), p99_us: at(0.99), mean_us: sum / sorted.length / 1000, n: sorted.length };
}

/** Times each call on its own (the timer's own ~30-60 ns are included: conservative). */
function timeSync(n: number, fn: (i: number) => unknown): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    fn(i);
    out[i] = Number(process.hrtime.bigint() - t0);
  }
  return out;
}

async function timeAsync(n: number, fn: (i: number) => Promise<unknown>): Promise<Float64Array> {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await fn(i);
    out[i] = Number(process.hrtime.bigint() - t0);
  }
  return out;
}

export async function microBenchmarks(smallDb: string, targets: BenchTargets, log: (s: string) => void): Promise<MicroResults> {
  // Decision: every (subject, action, target) of the domain, cycled.
  const bundle = await buildPolicyBundle(await loadPolicySourceFromDir('policies'));
  const rows: [string, string, string][] = [];
  for (const s of SUBJECTS) for (const a of ACTIONS) for (const t of TARGET_ROLES[a] ?? [NO_TARGET]) rows.push([s, a, t]);
  const enforcer = bundle.enforcer;
  const table = bundle.table;
  const N = 200_000;
  timeSync(20_000, (i) => enforcer.enforceSync(...rows[i % rows.length]!));
  const casbin = stats(timeSync(N / 10, (i) => enforcer.enforceSync(...rows[i % rows.length]!)));
  timeSync(N, (i) => {
    const r = rows[i % rows.length]!;
    return table.allows([r[0] as 'owner'], r[1] as 'workspace:read', r[2] as Target);
  });
  const tableStats = stats(
    timeSync(N, (i) => {
      const r = rows[i % rows.length]!;
      return table.allows([r[0] as 'owner'], r[1] as 'workspace:read', r[2] as Target);
    }),
  );
  log(`  decision: casbin p50 ${casbin.p50_us.toFixed(2)} µs, table p50 ${tableStats.p50_us.toFixed(3)} µs`);

  // JWT: the same token, verified by jose every time vs through the gateway's cache.
  const verifier = await createJwtVerifier({ key: { kind: 'secret', secret: BENCH_SECRET }, issuer: BENCH_ISSUER, audience: BENCH_AUDIENCE });
  const cachedVerifier = createCachedJwtVerifier(verifier);
  await timeAsync(2_000, () => verifier.verify(targets.jwt));
  const cold = stats(await timeAsync(20_000, () => verifier.verify(targets.jwt)));
  await timeAsync(2_000, () => cachedVerifier.verify(targets.jwt));
  const cached = stats(await timeAsync(50_000, () => cachedVerifier.verify(targets.jwt)));
  log(`  JWT: cold p50 ${cold.p50_us.toFixed(1)} µs, cached p50 ${cached.p50_us.toFixed(2)} µs`);

  // Role lookup: the decision's one statement, through the client vs the prepared reader.
  const db = await openDb({ url: `file:${smallDb}` });
  const viaClient = new AccessRepo(createDb(db.client, true));
  const prepared = new AccessRepo(db);
  const q = { userId: 'vic', workspaceId: 'acme', projectId: 'web', tokenId: undefined, guestScope: 'project' as const };
  if ((await prepared.userAccess(q)).workspaceRole !== 'viewer') throw new Error('role lookup returned the wrong role');
  await timeAsync(2_000, () => viaClient.userAccess(q));
  const client = stats(await timeAsync(10_000, () => viaClient.userAccess(q)));
  await timeAsync(2_000, () => prepared.userAccess(q));
  const before = { ...db.readStats! };
  const preparedStats = stats(await timeAsync(50_000, () => prepared.userAccess(q)));
  const hitRate = (db.readStats!.hits - before.hits) / 50_000;
  // A miss: the same statement for a caller it has not seen since the last commit.
  const preparedMiss = stats(await timeAsync(20_000, (i) => prepared.userAccess({ ...q, userId: `stranger-${i}` })));
  db.close();
  log(`  roles: client p50 ${client.p50_us.toFixed(1)} µs, prepared p50 ${preparedStats.p50_us.toFixed(1)} µs (hit rate ${hitRate}), miss p50 ${preparedMiss.p50_us.toFixed(1)} µs`);

  return { decision: { casbin, table: tableStats }, jwt: { cold, cached }, roles: { client, prepared: preparedStats, preparedMiss, hitRate } };
}

/**
 * Start-up to ready: startGateway() until it listens — migrations (on a fresh file when
 * `fresh`), policy load, table build and verification against a second enforcer.
 */
export async function startupBenchmark(file: string, upstreamUrl: string, fresh = false): Promise<{ median: number; runs: number[] }> {
  const runs: number[] = [];
  for (let i = 0; i < 5; i++) {
    if (fresh) for (const s of ['', '-wal', '-shm']) await rm(file + s, { force: true });
    const config = loadConfig({
      GATE_HOST: '127.0.0.1',
      GATE_PORT: '0',
      GATE_UPSTREAM_URL: upstreamUrl,
      GATE_DATABASE_URL: `file:${file}`,
      GATE_JWT_ISSUER: BENCH_ISSUER,
      GATE_JWT_AUDIENCE: BENCH_AUDIENCE,
      GATE_JWT_SECRET: BENCH_SECRET,
      GATE_TOKEN_ENCRYPTION_KEY: BENCH_ENCRYPTION_KEY.toString('base64'),
      GATE_LOG_LEVEL: 'error',
    });
    requireServeConfig(config);
    const t0 = performance.now();
    const gw = await startGateway(config, { decisionSink: () => undefined, logSink: () => undefined });
    runs.push(performance.now() - t0);
    await gw.close();
  }
  const sorted = [...runs].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)]!, runs };
}
