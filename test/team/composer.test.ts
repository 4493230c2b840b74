import { execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { demoComposerJson } from '../../src/demo/demo.ts';
import { handleDemoUpstream } from '../../src/demo/upstream.ts';
import { call } from '../helpers/api.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';

/**
 * Real Composer (Debian's package; `.ci/run` installs it) installs the demo package
 * through the gateway on loopback with an auth.json read from the API.
 */
let t: TestGateway;
let upstream: http.Server;
const seen: { url: string; principal: string | undefined }[] = [];
let work: string;

function composer(dir: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      'composer',
      ['install', '--no-interaction', '--no-progress', '--no-ansi'],
      {
        cwd: dir,
        timeout: 120_000,
        // A private home and cache per run: nothing is served from a previous run's cache.
        env: { ...process.env, COMPOSER_HOME: join(dir, '.composer-home'), COMPOSER_CACHE_DIR: join(dir, '.composer-cache'), COMPOSER_ALLOW_SUPERUSER: '1' },
      },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr }),
    );
  });
}

beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', principal: req.headers['x-packagento-principal'] as string | undefined });
    handleDemoUpstream(req, res);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  t = await startTestGateway({
    env: { GATE_UPSTREAM_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` },
    world: { workspaces: { acme: { members: { alice: 'owner', dave: 'developer' }, projects: { web: null } } } },
  });
  work = await mkdtemp(join(tmpdir(), 'gate-composer-'));
});
afterAll(async () => {
  await t?.close();
  upstream?.closeAllConnections();
  await new Promise((r) => upstream?.close(r));
  if (work) await rm(work, { recursive: true, force: true });
});

async function project(name: string, authJson: unknown): Promise<string> {
  const dir = join(work, name);
  await rm(dir, { recursive: true, force: true });
  await import('node:fs/promises').then((fs) => fs.mkdir(dir, { recursive: true }));
  await writeFile(join(dir, 'composer.json'), JSON.stringify(demoComposerJson(t.gw.url), null, 2));
  await writeFile(join(dir, 'auth.json'), JSON.stringify(authJson, null, 2));
  return dir;
}

test('composer install succeeds with a token from the API, and fails with an authentication error once its minter is removed', async () => {
  const minted = await call(t.gw.url, 'POST', '/v1/workspaces/acme/projects/web/tokens', { as: 'dave', body: { name: 'composer' } });
  expect(minted.status).toBe(201);
  const read = await call(t.gw.url, 'GET', `/v1/workspaces/acme/projects/web/tokens/${minted.body.token.id}`, { as: 'dave' });
  expect(read.status).toBe(200);

  const ok = await composer(await project('first', read.body.auth_json));
  expect(ok.output).toContain('Installing acme/hello (1.0.0)');
  expect(ok.code).toBe(0);
  // Every file Composer fetched went through the gateway as this token, including the archive.
  expect(seen.some((s) => s.url === '/repo/dist/acme/hello/1.0.0.zip' && s.principal === `token:${minted.body.token.id}`)).toBe(true);
  expect(seen.every((s) => s.principal === `token:${minted.body.token.id}`)).toBe(true);

  expect((await call(t.gw.url, 'DELETE', '/v1/workspaces/acme/members/dave', { as: 'alice' })).body.deactivated_tokens).toBe(1);
  const before = seen.length;
  const denied = await composer(await project('second', read.body.auth_json));
  expect(denied.code).not.toBe(0);
  // Composer 2: "The '…/repo/packages.json' URL required authentication (HTTP 401)" (or "Invalid credentials" when interactive).
  expect(denied.output).toMatch(/required authentication\s+\(HTTP 401\)|Invalid credentials/);
  expect(denied.output).not.toContain('Installing acme/hello');
  expect(seen.length).toBe(before);
}, 240_000);
