import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET } from '../helpers/jwt.ts';

/**
 * Every operator-facing failure of the real bin (what `npx packagento-gate` runs): exit 2 and
 * exactly one line on stderr naming the variable or file — never a stack trace.
 */
let dir: string;
let deadPort: number;
let serveEnv: Record<string, string>;

/** A loopback port nothing listens on (taken, then released). */
function closedPort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => ok(port));
    });
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gate-cli-failures-'));
  deadPort = await closedPort();
  serveEnv = {
    GATE_HOST: '127.0.0.1',
    GATE_PORT: '0',
    GATE_UPSTREAM_URL: 'http://127.0.0.1:9',
    GATE_JWT_ISSUER: TEST_ISSUER,
    GATE_JWT_AUDIENCE: TEST_AUDIENCE,
    GATE_JWT_SECRET: TEST_SECRET,
    GATE_TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    GATE_INVITE_URL: 'https://app.packagento.test/invites/{token}',
    GATE_DATABASE_URL: `file:${join(dir, 'serve.db')}`,
  };
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function bin(args: string[], env: Record<string, string>) {
  const r = spawnSync(process.execPath, ['bin/packagento-gate.mjs', ...args], {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Exit 2, nothing on stdout, and exactly `line` on stderr. */
function expectOneLine(r: ReturnType<typeof bin>, line: string | RegExp) {
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  if (typeof line === 'string') expect(r.stderr).toBe(line + '\n');
  else expect(r.stderr).toMatch(line);
  expect(r.code).toBe(2);
}

describe('--version', () => {
  it('prints the package version', async () => {
    const { version } = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = bin([flag], {});
      expect(r).toEqual({ code: 0, stdout: `packagento-gate ${version}\n`, stderr: '' });
    }
  });
});

describe('an unreachable database names GATE_DATABASE_URL', () => {
  it.each([
    ['migrate', ['migrate']],
    ['support transfer-ownership', ['support', 'transfer-ownership', '--workspace', 'acme', '--to', 'bob']],
  ])('%s', (name, args) => {
    const url = `libsql://127.0.0.1:${deadPort}`;
    expectOneLine(bin(args, { GATE_DATABASE_URL: url }), `packagento-gate ${name}: GATE_DATABASE_URL: cannot reach ${url}: ECONNREFUSED`);
  });

  it('serve', () => {
    const url = `http://127.0.0.1:${deadPort}`;
    expectOneLine(bin(['serve'], { ...serveEnv, GATE_DATABASE_URL: url }), `packagento-gate serve: GATE_DATABASE_URL: cannot reach ${url}: ECONNREFUSED`);
  });

  it('never prints the auth token of the URL', () => {
    const url = `libsql://127.0.0.1:${deadPort}?authToken=sekrit-token-value`;
    const r = bin(['migrate'], { GATE_DATABASE_URL: url, GATE_DATABASE_AUTH_TOKEN: 'another-sekrit' });
    expectOneLine(r, `packagento-gate migrate: GATE_DATABASE_URL: cannot reach libsql://127.0.0.1:${deadPort}: ECONNREFUSED`);
    expect(r.stderr).not.toContain('sekrit');
  });

  it('a file that is not a database', async () => {
    const file = join(dir, 'not-a-db.db');
    await writeFile(file, 'this is not SQLite\n'.repeat(200));
    expectOneLine(bin(['migrate'], { GATE_DATABASE_URL: `file:${file}` }), `packagento-gate migrate: GATE_DATABASE_URL: cannot open file:${file}: SQLITE_NOTADB: file is not a database`);
  });
});

describe('migrate and support never create a database by mistake', () => {
  it('migrate refuses a missing file, and creates it with --create', () => {
    const file = join(dir, 'typo', 'gaet.db');
    expectOneLine(
      bin(['migrate'], { GATE_DATABASE_URL: `file:${file}` }),
      `packagento-gate migrate: GATE_DATABASE_URL: ${file} does not exist (pass --create to create a new database there)`,
    );
    expect(existsSync(file)).toBe(false);
    expect(existsSync(join(dir, 'typo'))).toBe(false);
    const created = bin(['migrate', '--create'], { GATE_DATABASE_URL: `file:${file}` });
    expect(created).toMatchObject({ code: 0, stderr: '' });
    expect(created.stdout).toMatch(/^applied migrations .*; schema version \d+\n$/);
    expect(existsSync(file)).toBe(true);
  });

  it('support refuses a missing file', () => {
    const file = join(dir, 'missing.db');
    expectOneLine(
      bin(['support', 'transfer-ownership', '--workspace', 'acme', '--to', 'bob'], { GATE_DATABASE_URL: `file:${file}` }),
      `packagento-gate support transfer-ownership: GATE_DATABASE_URL: ${file} does not exist (pass --create to create a new database there)`,
    );
    expect(existsSync(file)).toBe(false);
  });
});

describe('configuration', () => {
  it('a bad GATE_JWT_PUBLIC_KEY is named before the database is touched', () => {
    const file = join(dir, 'untouched.db');
    const { GATE_JWT_SECRET: _secret, ...env } = serveEnv;
    const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    // One corrupted base64 line: OpenSSL's "DECODER routines::unsupported" before this change.
    const broken = pem.replace(/\n([A-Za-z0-9+/]{10})/, '\n@@@@@@@@@@');
    expectOneLine(
      bin(['serve'], { ...env, GATE_JWT_PUBLIC_KEY: broken, GATE_DATABASE_URL: `file:${file}` }),
      'packagento-gate serve: GATE_JWT_PUBLIC_KEY: is not a valid PEM public key (cannot decode it)',
    );
    expect(existsSync(file)).toBe(false);
  });

  it('seven bad variables are all reported in one run, on one line', () => {
    const r = bin(['serve'], {
      ...serveEnv,
      GATE_PORT: 'eighty',
      GATE_MODE: 'loud',
      GATE_UPSTREAM_URL: 'ftp://upstream',
      GATE_TOKEN_ENCRYPTION_KEY: 'too-short',
      GATE_INVITE_URL: 'https://app.example.com/invites',
      GATE_LOG_LEVEL: 'chatty',
      GATE_AUTHZ_HOST: '',
      GATE_DRAIN_TIMEOUT_MS: 'soon',
    });
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    for (const name of ['GATE_PORT', 'GATE_MODE', 'GATE_UPSTREAM_URL', 'GATE_TOKEN_ENCRYPTION_KEY', 'GATE_INVITE_URL', 'GATE_LOG_LEVEL', 'GATE_DRAIN_TIMEOUT_MS']) {
      expect(r.stderr).toContain(`${name}: `);
    }
    expect(existsSync(join(dir, 'serve.db'))).toBe(false);
  });

  it('serve requires GATE_INVITE_URL', () => {
    const { GATE_INVITE_URL: _invite, ...env } = serveEnv;
    expectOneLine(
      bin(['serve'], env),
      'packagento-gate serve: GATE_INVITE_URL: required for serve (the public accept-link template, e.g. https://app.example.com/invites/{token})',
    );
  });
});
