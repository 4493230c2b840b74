/**
 * Benchmark worlds: the small one the tests use, and a generated one at scale
 * (1 M memberships over 100 k workspaces, 100 k projects, 200 k tokens).
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import Database from 'libsql';
import { SignJWT } from 'jose';
import { generatePrivateKey, generatePublicKey } from '../src/authn/keys.ts';
import { seedWorld, type World } from '../src/policy-tools/world.ts';
import { createSecretBox } from '../src/crypto/secret-box.ts';
import { sha256 } from '../src/crypto/hash.ts';
import { openDb } from '../src/db/client.ts';
import { migrate } from '../src/db/migrations.ts';

export const BENCH_ISSUER = 'https://id.bench.packagento.invalid';
export const BENCH_AUDIENCE = 'packagento-gate-bench';
export const BENCH_SECRET = 'bench-only-hs256-secret-0123456789abcdef';
export const BENCH_ENCRYPTION_KEY = Buffer.alloc(32, 42);

/** What a load run sends: a user JWT for a forwarded route, and a project token for /repo. */
export interface BenchTargets {
  jwtPath: string;
  jwt: string;
  tokenPath: string;
  basic: string;
}

export async function benchJwt(sub: string): Promise<string> {
  return new SignJWT({ email: `${sub}@bench.invalid`, email_verified: true })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuer(BENCH_ISSUER)
    .setAudience(BENCH_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('2h')
    .sign(new TextEncoder().encode(BENCH_SECRET));
}

const basicOf = (pk: string, sk: string) => 'Basic ' + Buffer.from(`${pk}:${sk}`).toString('base64');

const SMALL: World = {
  workspaces: {
    acme: {
      members: { alice: 'owner', bob: 'admin', dave: 'developer', bill: 'billing', vic: 'viewer' },
      projects: { web: { guests: { gina: 'developer' } }, api: null },
    },
  },
  tokens: { t1: { project: 'acme/web', minted_by: 'dave' } },
};

/** The small world, seeded through the same code the fixtures use. */
export async function createSmallWorld(file: string): Promise<BenchTargets> {
  for (const s of ['', '-wal', '-shm']) await rm(file + s, { force: true });
  const db = await openDb({ url: `file:${file}` });
  try {
    await migrate(db);
    const seeded = await seedWorld(db, SMALL, createSecretBox(BENCH_ENCRYPTION_KEY));
    const t1 = seeded.tokens.get('t1')!;
    return {
      jwtPath: '/v1/workspaces/acme/licences',
      jwt: await benchJwt('vic'),
      tokenPath: '/repo/packages.json',
      basic: basicOf(t1.publicKey, t1.privateKey),
    };
  } finally {
    db.close();
  }
}

export const SCALE = { workspaces: 100_000, membersPerWorkspace: 10, users: 250_000, tokensPerProject: 2 } as const;
const SCALE_VERSION = 'v1';

/**
 * Generates (or reuses) the scale database: 100 k workspaces × 10 members = 1 M memberships over
 * 250 k users, one project per workspace (100 k) with one guest each, two tokens per project (200 k).
 * Returns the targets for a member in the middle of the key space.
 */
export async function createScaleWorld(file: string, log: (s: string) => void): Promise<BenchTargets & { generatedMs: number | null }> {
  const target = { ws: 'w050000', user: '', project: 'p050000' };
  if (existsSync(file)) {
    const raw = new Database(file);
    try {
      const meta = raw.prepare("SELECT value FROM gate_meta WHERE key = 'bench_scale'").get() as { value: string } | undefined;
      if (meta) {
        const saved = JSON.parse(meta.value) as { version: string; user: string; pk: string; sk: string };
        if (saved.version === SCALE_VERSION) {
          log(`reusing the scale database ${file}`);
          return {
            jwtPath: `/v1/workspaces/${target.ws}/licences`,
            jwt: await benchJwt(saved.user),
            tokenPath: '/repo/packages.json',
            basic: basicOf(saved.pk, saved.sk),
            generatedMs: null,
          };
        }
      }
    } finally {
      raw.close();
    }
  }
  for (const s of ['', '-wal', '-shm']) await rm(file + s, { force: true });
  const started = Date.now();
  const db = await openDb({ url: `file:${file}` });
  await migrate(db);
  db.close();

  const raw = new Database(file, { timeout: 5000 });
  raw.exec('PRAGMA journal_mode = WAL');
  const box = createSecretBox(BENCH_ENCRYPTION_KEY);
  const now = Date.now();
  const pad = (n: number) => String(n).padStart(6, '0');
  const insertUser = raw.prepare('INSERT INTO users (id, email, email_verified, created_at, last_seen_at) VALUES (?, ?, 1, ?, ?)');
  const insertWs = raw.prepare('INSERT INTO workspaces (id, name, created_by, created_at) VALUES (?, ?, ?, ?)');
  const insertMember = raw.prepare('INSERT INTO memberships (workspace_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)');
  const insertProject = raw.prepare('INSERT INTO projects (id, workspace_id, name, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)');
  const insertGuest = raw.prepare('INSERT OR IGNORE INTO project_guests (project_id, user_id, workspace_id, role, added_at) VALUES (?, ?, ?, ?, ?)');
  const insertToken = raw.prepare(`INSERT INTO tokens (id, workspace_id, project_id, name, public_key, secret_hash, secret_ciphertext, key_id,
                                    minted_by, minted_as, active, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'member', 1, ?)`);
  const roles = ['owner', 'admin', 'developer', 'developer', 'developer', 'billing', 'billing', 'viewer', 'viewer', 'viewer'];
  const userOf = (ws: number, j: number) => `u${pad((ws * SCALE.membersPerWorkspace + j * 7919) % SCALE.users)}`;
  let benchToken = { pk: '', sk: '' };

  raw.exec('BEGIN IMMEDIATE');
  for (let u = 0; u < SCALE.users; u++) insertUser.run(`u${pad(u)}`, `u${pad(u)}@bench.invalid`, now, now);
  for (let w = 0; w < SCALE.workspaces; w++) {
    const ws = `w${pad(w)}`;
    const members = new Set<string>();
    insertWs.run(ws, ws, userOf(w, 0), now);
    for (let j = 0; j < SCALE.membersPerWorkspace; j++) {
      const user = userOf(w, j);
      if (members.has(user)) continue;
      members.add(user);
      insertMember.run(ws, user, roles[j]!, now);
    }
    const p = `p${pad(w)}`;
    insertProject.run(p, ws, p, userOf(w, 0), now, now);
    const guest = `u${pad((w * 13 + 5) % SCALE.users)}`;
    if (!members.has(guest)) insertGuest.run(p, guest, ws, 'developer', now);
    for (let k = 0; k < SCALE.tokensPerProject; k++) {
      const id = `t${pad(w)}${k}`;
      const pk = generatePublicKey();
      const sk = generatePrivateKey();
      insertToken.run(id, ws, p, id, pk, sha256(sk), box.seal(sk, id), box.keyId, userOf(w, 0), now);
      if (ws === target.ws && k === 0) benchToken = { pk, sk };
    }
    if (w % 20_000 === 19_999) log(`  generated ${w + 1} workspaces`);
  }
  target.user = userOf(Number(target.ws.slice(1)), 7); // a viewer of the target workspace
  raw
    .prepare("INSERT INTO gate_meta (key, value) VALUES ('bench_scale', ?)")
    .run(JSON.stringify({ version: SCALE_VERSION, user: target.user, ...benchToken }));
  raw.exec('COMMIT');
  raw.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  raw.exec('ANALYZE');
  raw.close();
  return {
    jwtPath: `/v1/workspaces/${target.ws}/licences`,
    jwt: await benchJwt(target.user),
    tokenPath: '/repo/packages.json',
    basic: basicOf(benchToken.pk, benchToken.sk),
    generatedMs: Date.now() - started,
  };
}

/** Row counts of a database, to report the scale actually measured. */
export function countRows(file: string): Record<string, number> {
  const raw = new Database(file);
  try {
    const out: Record<string, number> = {};
    for (const table of ['users', 'workspaces', 'memberships', 'projects', 'project_guests', 'tokens']) {
      out[table] = Number((raw.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n);
    }
    return out;
  } finally {
    raw.close();
  }
}
