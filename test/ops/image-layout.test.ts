import { execFileSync, spawn, spawnSync, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, cp, mkdir, mkdtemp, readdir, rm, stat, symlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DockerfileParser, type Copy, type Env, type From, type Instruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET } from '../helpers/jwt.ts';
import { startEchoUpstream, type EchoUpstream } from '../helpers/upstream.ts';

/**
 * What `docker run --read-only` would run, without Docker: the runtime stage of the
 * Dockerfile is read instruction by instruction (dockerfile-ast) and its COPYs are
 * replayed into a temp folder — the build stage's dist/ built from exactly the files
 * that stage copies, the deps stage's production-only node_modules from the lock file.
 * The tree is then made read-only and `check`, `serve` and the HEALTHCHECK run from it
 * as an unprivileged user (root ignores permission bits) with a read-only TMPDIR.
 */
const ROOT = resolve('.');
const DOCKERFILE = join(ROOT, 'Dockerfile');
const UNPRIVILEGED = 65534; // nobody

interface Stage {
  name: string;
  instructions: Instruction[];
}

async function stages(): Promise<Stage[]> {
  const { readFile } = await import('node:fs/promises');
  const df = DockerfileParser.parse(await readFile(DOCKERFILE, 'utf8'));
  const out: Stage[] = [];
  for (const i of df.getInstructions()) {
    if (i.getKeyword() === 'FROM') out.push({ name: (i as From).getBuildStage() ?? String(out.length), instructions: [] });
    else out.at(-1)?.instructions.push(i);
  }
  return out;
}

const args = (i: Instruction) => i.getArguments().map((a) => a.getValue());
const fromFlag = (i: Instruction) => (i as Copy).getFlags().find((f) => f.getName() === 'from')?.getValue() ?? undefined;

/** Replays a stage's COPY (from the repo) and RUN instructions into `dir`. */
async function replayStage(stage: Stage, dir: string, run: (cmd: string, cwd: string) => void): Promise<void> {
  for (const i of stage.instructions) {
    const kw = i.getKeyword();
    if (kw === 'COPY') {
      if (fromFlag(i) !== undefined) throw new Error(`stage ${stage.name}: COPY --from is not replayed`);
      const a = args(i);
      const dest = a.at(-1)!;
      for (const src of a.slice(0, -1)) {
        const target = dest.endsWith('/') ? join(dir, dest, src) : join(dir, dest);
        await cp(join(ROOT, src), target, { recursive: true });
      }
    } else if (kw === 'RUN') {
      // `npm cache clean` would empty this machine's shared npm cache; the rest runs as written.
      for (const cmd of (i.getArgumentsContent() ?? '').split('&&').map((c) => c.replace(/\\\s*\n/g, ' ').trim())) {
        if (!cmd.startsWith('npm cache clean')) run(cmd, dir);
      }
    } else if (!['WORKDIR', 'ENV', 'ARG'].includes(kw)) {
      throw new Error(`stage ${stage.name}: ${kw} is not replayed by this test`);
    }
  }
}

function freePort(host: string): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, host, () => {
      const { port } = s.address() as { port: number };
      s.close(() => ok(port));
    });
  });
}

let work: string;
let app: string;
let readOnlyTmp: string;
let imageEnv: Record<string, string>;
let runtime: Stage;
let upstream: EchoUpstream;
const asRoot = process.getuid?.() === 0;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'gate-image-'));
  await chmod(work, 0o755);
  const all = await stages();
  const byName = new Map(all.map((s) => [s.name, s]));
  runtime = all.at(-1)!;
  const sh = (cmd: string, cwd: string) => execFileSync('sh', ['-c', cmd], { cwd, stdio: 'pipe', timeout: 120_000 });

  // Build stage: its own copies; its `npm ci` is the lock file's, i.e. this checkout's node_modules.
  const build = join(work, 'stage-build');
  await mkdir(build);
  await symlink(join(ROOT, 'node_modules'), join(build, 'node_modules'));
  const buildStage = byName.get('build')!;
  await replayStage({ ...buildStage, instructions: buildStage.instructions.filter((i) => !(i.getKeyword() === 'RUN' && /^npm ci\b/.test(i.getArgumentsContent() ?? ''))) }, build, sh);
  // Deps stage: production dependencies only, installed from the lock file.
  const deps = join(work, 'stage-deps');
  await mkdir(deps);
  await replayStage(byName.get('deps')!, deps, (cmd, cwd) => sh(`${cmd} --prefer-offline --loglevel=error`, cwd));

  app = join(work, 'app');
  await mkdir(app);
  imageEnv = {};
  for (const i of runtime.instructions) {
    const kw = i.getKeyword();
    if (kw === 'ENV') for (const p of (i as Env).getProperties()) imageEnv[p.getName()] = (p.getValue() ?? '').replaceAll('/app/', `${app}/`);
    if (kw !== 'COPY') continue;
    const a = args(i);
    const from = fromFlag(i);
    const dest = join(app, a.at(-1)!);
    for (const src of a.slice(0, -1)) {
      if (from === undefined) await cp(join(ROOT, src), a.at(-1)!.endsWith('/') ? join(dest, src) : dest, { recursive: true });
      else {
        const stageDir = { build, deps }[from as 'build' | 'deps'];
        if (!stageDir) throw new Error(`COPY --from=${from} is not replayed`);
        await cp(join(stageDir, src.replace(/^\/app\//, '')), dest, { recursive: true, dereference: true });
      }
    }
  }
  // The image's one writable place: the data volume, owned by the runtime user.
  await mkdir(join(app, 'data'));
  if (asRoot) await chown(join(app, 'data'), UNPRIVILEGED, UNPRIVILEGED);
  // Everything else read-only, and a TMPDIR nobody can write to (what made tsx fail).
  execFileSync('chmod', ['-R', 'a-w', ...(await readdir(app)).filter((n) => n !== 'data').map((n) => join(app, n))]);
  await chmod(app, 0o555);
  readOnlyTmp = join(work, 'tmp');
  await mkdir(readOnlyTmp);
  await chmod(readOnlyTmp, 0o555);
  upstream = await startEchoUpstream();
}, 180_000);

afterAll(async () => {
  await upstream?.close();
  if (work) {
    execFileSync('chmod', ['-R', 'u+w', work]);
    await rm(work, { recursive: true, force: true });
  }
});

function spawnOptions(env: Record<string, string>): SpawnOptions {
  return {
    cwd: app,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: '/nonexistent', TMPDIR: readOnlyTmp, ...imageEnv, ...env },
    ...(asRoot ? { uid: UNPRIVILEGED, gid: UNPRIVILEGED } : {}),
  };
}

const entrypoint = () => JSON.parse(runtime.instructions.find((i) => i.getKeyword() === 'ENTRYPOINT')!.getArgumentsContent()!) as string[];
const healthcheck = () => JSON.parse(runtime.instructions.find((i) => i.getKeyword() === 'HEALTHCHECK')!.getArgumentsContent()!.replace(/^.*?CMD\s+/s, '')) as string[];

describe('the image layout, read-only', () => {
  it('the runtime has compiled JavaScript and production dependencies only: no TypeScript, no tsx', async () => {
    expect((await stat(join(app, 'dist', 'cli.js'))).isFile()).toBe(true);
    await expect(stat(join(app, 'src'))).rejects.toThrow();
    await expect(stat(join(app, 'node_modules', 'tsx'))).rejects.toThrow();
    await expect(stat(join(app, 'node_modules', 'typescript'))).rejects.toThrow();
    const [node, ...rest] = entrypoint();
    expect(node).toBe('node');
    expect(rest.some((a) => /tsx|\.ts$/.test(a))).toBe(false);
    // The TMPDIR really is not writable for the runtime user.
    const probe = spawnSync(process.execPath, ['-e', `require('fs').writeFileSync(require('path').join(process.env.TMPDIR, 'x'), 'x')`], { ...spawnOptions({}), encoding: 'utf8' });
    expect(probe.status).not.toBe(0);
    expect(probe.stderr).toMatch(/EACCES|EROFS/);
  });

  it('check runs from it and exits 0', () => {
    const [, ...entry] = entrypoint();
    const r = spawnSync(process.execPath, [...entry, 'check'], { ...spawnOptions({}), encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^check: \d+ invariants hold over \d+ decisions and \d+ routes \(revision [0-9a-f]{16}\)$/m);
    expect(r.status).toBe(0);
  }, 60_000);

  it('serve runs from it, the HEALTHCHECK follows GATE_HOST/GATE_PORT, and SIGTERM drains within the stop timeout', async () => {
    // A specific loopback address other than 127.0.0.1: a healthcheck hard-coding 127.0.0.1 fails here.
    const host = '127.0.0.2';
    const port = await freePort(host);
    const env = {
      GATE_HOST: host,
      GATE_PORT: String(port),
      GATE_UPSTREAM_URL: upstream.url,
      GATE_JWT_ISSUER: TEST_ISSUER,
      GATE_JWT_AUDIENCE: TEST_AUDIENCE,
      GATE_JWT_SECRET: TEST_SECRET,
      GATE_TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      GATE_INVITE_URL: 'https://app.packagento.test/invites/{token}',
    };
    const [, ...entry] = entrypoint();
    const child = spawn(process.execPath, [...entry, 'serve'], { ...spawnOptions(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (c) => (out += c));
    child.stderr!.on('data', (c) => (out += c));
    const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
    try {
      const deadline = Date.now() + 30_000;
      while (!out.includes('"msg":"listening"')) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`serve did not start: ${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const [hcNode, ...hc] = healthcheck();
      expect(hcNode).toBe('node');
      const healthy = spawnSync(process.execPath, hc, { ...spawnOptions(env), encoding: 'utf8', timeout: 10_000 });
      expect(healthy.status).toBe(0);
      // The same check against a port nothing listens on fails, so the 0 above means something.
      const elsewhere = spawnSync(process.execPath, hc, { ...spawnOptions({ ...env, GATE_PORT: String(await freePort(host)) }), encoding: 'utf8', timeout: 10_000 });
      expect(elsewhere.status).toBe(1);
      expect((await fetch(`http://${host}:${port}/_gate/readyz`)).status).toBe(200);
      // The only writes went to the data volume.
      expect((await readdir(join(app, 'data'))).some((f) => f.startsWith('gate.db'))).toBe(true);
    } finally {
      child.kill('SIGTERM');
    }
    const started = Date.now();
    expect(await exited).toBe(0);
    // Docker's default stop timeout is 10 s; the image's grace + drain must end before it.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(Number(imageEnv['GATE_SHUTDOWN_GRACE_MS']) + Number(imageEnv['GATE_DRAIN_TIMEOUT_MS'])).toBeLessThan(10_000);
    expect(out).not.toMatch(/ENOTDIR|EACCES|EROFS/);
  }, 60_000);

  it('the Dockerfile lints clean (dockerfile-utils, every check an error)', async () => {
    const { readFile } = await import('node:fs/promises');
    const all = 2; // ValidationSeverity.ERROR
    const problems = validate(await readFile(DOCKERFILE, 'utf8'), {
      deprecatedMaintainer: all,
      directiveCasing: all,
      emptyContinuationLine: all,
      instructionCasing: all,
      instructionCmdMultiple: all,
      instructionEntrypointMultiple: all,
      instructionHealthcheckMultiple: all,
      instructionJSONInSingleQuotes: all,
      instructionWorkdirRelative: all,
    });
    expect(problems.map((p) => `${p.range.start.line + 1}: ${p.message}`)).toEqual([]);
    // and the linter does flag a broken one, so the empty list above means something
    expect(validate('FROM node:24\nCOPY a\nHEALTHCHECK CMD\n').length).toBeGreaterThanOrEqual(2);
  });
});

