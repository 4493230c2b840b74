/**
 * `serve --workers N` as an operator runs it (bin/packagento-gate.mjs, the compiled dist/): the
 * cluster primary and its workers in one process group, configured by GATE_* variables, the
 * decision log drained and dropped. bench/run.ts loads N = 1 and N = 2 in interleaved rounds.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './external.ts';
import { startProcess, type BenchServer } from './spawn.ts';
import { BENCH_AUDIENCE, BENCH_ENCRYPTION_KEY, BENCH_ISSUER, BENCH_SECRET } from './world.ts';

/** The newest modification time under a folder (src/: is dist/ older than the code?). */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

export async function startServe(workers: number, upstreamUrl: string, dbFile: string): Promise<BenchServer> {
  // npm install builds dist/ (the "prepare" script); a checkout without it, or with sources newer
  // than it, is built here, so the CLI measured is the code in the tree.
  if (!existsSync('dist/cli.js') || statSync('dist/cli.js').mtimeMs < newestMtime('src')) {
    execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
  }
  const port = await freePort();
  return startProcess(`serve --workers ${workers}`, process.execPath, ['bin/packagento-gate.mjs', 'serve', '--workers', String(workers)], port, {
    env: {
      NODE_ENV: 'production',
      GATE_HOST: '127.0.0.1',
      GATE_PORT: String(port),
      GATE_UPSTREAM_URL: upstreamUrl,
      GATE_DATABASE_URL: `file:${dbFile}`,
      GATE_JWT_ISSUER: BENCH_ISSUER,
      GATE_JWT_AUDIENCE: BENCH_AUDIENCE,
      GATE_JWT_SECRET: BENCH_SECRET,
      GATE_TOKEN_ENCRYPTION_KEY: BENCH_ENCRYPTION_KEY.toString('base64'),
      GATE_INVITE_URL: 'https://bench.invalid/invites/{token}',
      GATE_LOG_LEVEL: 'warn',
    },
  });
}
