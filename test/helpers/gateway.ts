import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { World, SeededWorld } from '../../src/policy-tools/world.ts';
import { seedWorld } from '../../src/policy-tools/world.ts';
import { loadConfig, requireServeConfig } from '../../src/config.ts';
import { createSecretBox } from '../../src/crypto/secret-box.ts';
import { startGateway, type Gateway, type GatewayOptions } from '../../src/main.ts';
import { TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET, userJwt } from './jwt.ts';
import { startEchoUpstream, type EchoUpstream } from './upstream.ts';

export interface TestGateway {
  gw: Gateway;
  upstream: EchoUpstream;
  dir: string;
  decisions: Record<string, any>[];
  logs: string[];
  seeded: SeededWorld;
  encryptionKey: Buffer;
  /** fetch() against the gateway; `as` signs a JWT for that user, or uses a seeded token's Basic credentials. */
  request(method: string, path: string, opts?: { as?: string; headers?: Record<string, string>; body?: unknown }): Promise<Response>;
  close(): Promise<void>;
}

export interface TestGatewayOptions extends GatewayOptions {
  world?: World;
  policyDir?: string;
  env?: Record<string, string>;
  /** Reuse a database folder (a second instance on the same file). */
  dir?: string;
  encryptionKey?: Buffer;
  upstream?: EchoUpstream;
}

export function basicAuth(user: string, password: string): string {
  return 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
}

/** The real gateway on 127.0.0.1, a real libSQL file in a temp folder, a real recording upstream. */
export async function startTestGateway(opts: TestGatewayOptions = {}): Promise<TestGateway> {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'gate-test-')));
  const upstream = opts.upstream ?? (await startEchoUpstream());
  const encryptionKey = opts.encryptionKey ?? randomBytes(32);
  const config = loadConfig({
    GATE_HOST: '127.0.0.1',
    GATE_PORT: '0',
    GATE_UPSTREAM_URL: upstream.url,
    GATE_DATABASE_URL: `file:${join(dir, 'gate.db')}`,
    GATE_POLICY_DIR: opts.policyDir ?? 'policies',
    GATE_JWT_ISSUER: TEST_ISSUER,
    GATE_JWT_AUDIENCE: TEST_AUDIENCE,
    GATE_JWT_SECRET: TEST_SECRET,
    GATE_TOKEN_ENCRYPTION_KEY: encryptionKey.toString('base64'),
    GATE_UPSTREAM_TIMEOUT_MS: '2000',
    GATE_LOG_LEVEL: 'debug',
    ...(opts.env ?? {}),
  });
  requireServeConfig(config);
  const decisions: Record<string, any>[] = [];
  const logs: string[] = [];
  const gw = await startGateway(config, {
    decisionSink: (l) => decisions.push(JSON.parse(l)),
    logSink: (l) => logs.push(l),
    ...opts,
  });
  const seeded: SeededWorld = opts.world
    ? await seedWorld(gw.db, opts.world, createSecretBox(encryptionKey))
    : { users: new Set(), tokens: new Map() };

  return {
    gw,
    upstream,
    dir,
    decisions,
    logs,
    seeded,
    encryptionKey,
    async request(method, path, o = {}) {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      if (o.as !== undefined) {
        const token = seeded.tokens.get(o.as);
        headers['authorization'] = token ? basicAuth(token.publicKey, token.privateKey) : `Bearer ${await userJwt(o.as)}`;
      }
      let body: string | undefined;
      if (o.body !== undefined) {
        body = JSON.stringify(o.body);
        headers['content-type'] ??= 'application/json';
      }
      return fetch(gw.url + path, { method, headers, ...(body !== undefined ? { body } : {}) });
    },
    async close() {
      await gw.close();
      if (!opts.upstream) await upstream.close();
      if (!opts.dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The world most tests use: one workspace per role, a project with guests, and tokens. */
export const ACME: World = {
  workspaces: {
    acme: {
      members: { alice: 'owner', bob: 'admin', dave: 'developer', bill: 'billing', vic: 'viewer' },
      projects: { web: { guests: { gina: 'developer', gus: 'viewer' } }, api: null },
    },
    globex: {
      members: { gwen: 'owner', dave: 'viewer' },
      projects: { shop: null },
    },
  },
  tokens: {
    t1: { project: 'acme/web', minted_by: 'dave' },
    t2: { project: 'acme/api', minted_by: 'bob' },
    tshop: { project: 'globex/shop', minted_by: 'gwen' },
    tdead: { project: 'acme/web', minted_by: 'dave', active: false },
  },
};
