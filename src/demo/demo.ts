import { appendFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { SignJWT } from 'jose';
import { loadConfig, requireServeConfig, type LogLevel } from '../config.ts';
import { startGateway, type Gateway } from '../main.ts';
import { DEMO_AUDIENCE, DEMO_ISSUER, DEMO_JWT_SECRET, DEMO_TOKEN_ENCRYPTION_KEY } from './credentials.ts';
import { DEMO_PACKAGE, startDemoUpstream, type DemoUpstream } from './upstream.ts';
import { startMailSink, type MailSink } from './mail-sink.ts';

export interface DemoOptions {
  host: string;
  port: number;
  dataDir: string;
  policyDir: string;
  logLevel: LogLevel;
}

export interface DemoUser {
  name: string;
  role: string;
  jwt: string;
}

export interface DemoWorld {
  workspaceId: string;
  projectId: string;
  otherProjectId: string;
  users: DemoUser[];
  token: { id: string; publicKey: string; privateKey: string; mintedBy: string };
}

export interface Demo {
  gateway: Gateway;
  upstream: DemoUpstream;
  world: DemoWorld;
  decisionsFile: string;
  /** The local SMTP sink the invite emails go to (DIR/mail/*.eml). */
  mail: MailSink;
  close(): Promise<void>;
}

const JWT_HOURS = 12;

function freePort(host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolvePort(port));
    });
  });
}

/** A demo-only JWT (the demo secret is public; `serve` refuses it). */
export async function demoJwt(sub: string, email = `${sub}@demo.packagento.test`): Promise<string> {
  return new SignJWT({ email, email_verified: true })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuer(DEMO_ISSUER)
    .setAudience(DEMO_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(`${JWT_HOURS}h`)
    .sign(new TextEncoder().encode(DEMO_JWT_SECRET));
}

async function api(base: string, jwt: string, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${jwt}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const json = await res.json().catch(() => undefined);
  if (!res.ok) throw new Error(`demo seed: ${method} ${path} answered ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Seeds the demo world through the gateway's own API, as a customer would. */
async function seedThroughApi(base: string): Promise<DemoWorld> {
  const jwts = new Map<string, string>();
  for (const name of ['alice', 'bob', 'dave', 'bill', 'vic', 'gina', 'erin']) jwts.set(name, await demoJwt(name));
  const as = (name: string) => jwts.get(name)!;

  const ws = await api(base, as('alice'), 'PUT', '/v1/me/workspace', { name: 'Acme Corp' });
  const web = await api(base, as('alice'), 'POST', `/v1/workspaces/${ws.id}/projects`, { name: 'web' });
  const internal = await api(base, as('alice'), 'POST', `/v1/workspaces/${ws.id}/projects`, { name: 'internal-tools' });
  const roles: [string, string][] = [
    ['bob', 'admin'],
    ['dave', 'developer'],
    ['bill', 'billing'],
    ['vic', 'viewer'],
  ];
  for (const [name, role] of roles) {
    const inviter = role === 'admin' ? 'alice' : 'bob';
    const inv = await api(base, as(inviter), 'POST', `/v1/workspaces/${ws.id}/invites`, { email: `${name}@demo.packagento.test`, role });
    await api(base, as(name), 'POST', `/v1/invites/${String(inv.accept_url).split('/').pop()}/accept`);
  }
  const guest = await api(base, as('bob'), 'POST', `/v1/workspaces/${ws.id}/projects/${web.id}/guests`, {
    email: 'gina@demo.packagento.test',
    role: 'developer',
  });
  await api(base, as('gina'), 'POST', `/v1/invites/${String(guest.accept_url).split('/').pop()}/accept`);
  const minted = await api(base, as('dave'), 'POST', `/v1/workspaces/${ws.id}/projects/${web.id}/tokens`, { name: 'composer' });

  return {
    workspaceId: ws.id,
    projectId: web.id,
    otherProjectId: internal.id,
    users: [
      { name: 'alice', role: 'owner', jwt: as('alice') },
      ...roles.map(([name, role]) => ({ name, role, jwt: as(name) })),
      { name: 'gina', role: 'guest developer on web', jwt: as('gina') },
      { name: 'erin', role: 'no role yet: the guide invites her', jwt: as('erin') },
    ],
    token: { id: minted.token.id, publicKey: minted.token.public_key, privateKey: minted.token.private_key, mintedBy: 'dave' },
  };
}

/**
 * The whole demo: a fresh embedded libSQL file, the bundled upstream, the gateway
 * with demo-only credentials, and a workspace seeded through the API.
 */
export async function startDemo(o: DemoOptions): Promise<Demo> {
  const dataDir = resolve(o.dataDir);
  await mkdir(dataDir, { recursive: true });
  const dbFile = join(dataDir, 'demo.db');
  // A fresh world every run: the printed JWTs and keys always match the database.
  for (const suffix of ['', '-wal', '-shm']) await rm(dbFile + suffix, { force: true });
  const decisionsFile = join(dataDir, 'demo-decisions.jsonl');
  await rm(decisionsFile, { force: true });
  const mailDir = join(dataDir, 'mail');
  await rm(mailDir, { recursive: true, force: true });

  // The invite links name the gateway's port, so a "pick any port" request is resolved first.
  const port = o.port === 0 ? await freePort(o.host) : o.port;
  const upstream = await startDemoUpstream(0, '127.0.0.1');
  const mail = await startMailSink(mailDir);
  const publicHost = o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host;
  const config = loadConfig({
    GATE_HOST: o.host,
    GATE_PORT: String(port),
    GATE_UPSTREAM_URL: upstream.url,
    GATE_DATABASE_URL: `file:${dbFile}`,
    GATE_POLICY_DIR: o.policyDir,
    GATE_JWT_ISSUER: DEMO_ISSUER,
    GATE_JWT_AUDIENCE: DEMO_AUDIENCE,
    GATE_JWT_SECRET: DEMO_JWT_SECRET,
    GATE_TOKEN_ENCRYPTION_KEY: DEMO_TOKEN_ENCRYPTION_KEY.toString('base64'),
    GATE_INVITE_URL: `http://${publicHost}:${port}/v1/invites/{token}`,
    GATE_LOG_LEVEL: o.logLevel,
    GATE_SMTP_URL: mail.url,
    GATE_MAIL_FROM: 'Packagento demo <noreply@demo.packagento.test>',
  });
  requireServeConfig(config);
  let gateway: Gateway;
  try {
    gateway = await startGateway(config, {
      decisionSink: (line) => appendFileSync(decisionsFile, line + '\n'),
      watchPolicy: true,
      // Emails out within a fraction of a second, so the guide's reader sees them at once.
      outbox: { pollMs: 200 },
    });
  } catch (err) {
    await upstream.close();
    await mail.close();
    throw err;
  }
  try {
    await gateway.db.execute({ sql: "INSERT INTO gate_meta (key, value) VALUES ('demo', ?)", args: [new Date().toISOString()] });
    const world = await seedThroughApi(gateway.url);
    return {
      gateway,
      upstream,
      world,
      decisionsFile,
      mail,
      async close() {
        await gateway.close();
        await upstream.close();
        await mail.close();
      },
    };
  } catch (err) {
    await gateway.close();
    await upstream.close();
    await mail.close();
    throw err;
  }
}

/** What `npm run demo` prints: credentials and commands that work as printed. */
export function demoInstructions(demo: Demo): string {
  const base = demo.gateway.url;
  const { world } = demo;
  const ws = world.workspaceId;
  const p = world.projectId;
  const env = (name: string) => `${name.toUpperCase()}_JWT`;
  const lines = [
    `Packagento Gate demo — gateway on ${base}`,
    `  upstream: the bundled demo upstream on ${demo.upstream.url}`,
    `  policy revision ${demo.gateway.policy.current.revision}; decisions are logged to ${demo.decisionsFile}`,
    `  invite emails (a local SMTP sink) land in ${demo.mail.dir}/*.eml`,
    '  DEMO-ONLY credentials below: `packagento-gate serve` refuses them.',
    '',
    `Workspace "Acme Corp" = ${ws}; project "web" = ${p}; project "internal-tools" = ${world.otherProjectId}`,
    '',
    `# Paste this block into your shell (the README's team-and-roles guide uses it; JWTs valid ${JWT_HOURS} hours):`,
    `export GATE='${base}' WS='${ws}' P='${p}' T='${world.token.id}'   # gateway, workspace, project "web", dave's token`,
    ...world.users.map((u) => `export ${env(u.name)}='${u.jwt}'   # ${u.name}: ${u.role}`),
    '',
    '# Try (each line works as printed once the exports above are in your shell):',
    `curl -s -w '\\n' -H "Authorization: Bearer $ALICE_JWT" ${base}/v1/me/workspaces`,
    `curl -s -w '\\n' -H "Authorization: Bearer $VIC_JWT" ${base}/v1/workspaces/${ws}/members`,
    `curl -s -w '\\n' -H "Authorization: Bearer $BILL_JWT" -X POST ${base}/v1/workspaces/${ws}/licences/lic_1001/refund-requests`,
    `curl -s -w '\\n' -H "Authorization: Bearer $DAVE_JWT" -X POST ${base}/v1/workspaces/${ws}/licences/lic_1001/refund-requests   # 403: developers cannot refund`,
    `curl -s -w '\\n' -H "Authorization: Bearer $GINA_JWT" ${base}/v1/workspaces/${ws}/projects/${p}/licences   # a guest sees their project's licences`,
    `curl -s -w '\\n' -H "Authorization: Bearer $GINA_JWT" ${base}/v1/workspaces/${ws}/licences   # 403: not workspace-wide`,
    `curl -s -w '\\n' -H "Authorization: Bearer $DAVE_JWT" ${base}/v1/workspaces/${ws}/projects/${p}/tokens/${world.token.id}`,
    `curl -s -w '\\n' -u '${world.token.publicKey}:${world.token.privateKey}' ${base}/repo/packages.json`,
    `curl -s -w '\\n' -H "Authorization: Bearer $BOB_JWT" -H 'content-type: application/json' -d '{"email":"new@demo.packagento.test","role":"developer"}' ${base}/v1/workspaces/${ws}/invites`,
    '',
    `# Composer: install ${DEMO_PACKAGE.name} through the gateway with dave's project token`,
    'mkdir -p /tmp/packagento-demo-app && cd /tmp/packagento-demo-app',
    `cat > composer.json <<'JSON'`,
    JSON.stringify(demoComposerJson(base), null, 2),
    'JSON',
    `cat > auth.json <<'JSON'`,
    JSON.stringify(demoAuthJson(base, world.token.publicKey, world.token.privateKey), null, 2),
    'JSON',
    'composer install',
    '',
    'Stop with Ctrl-C.',
  ];
  return lines.join('\n') + '\n';
}

export function demoComposerJson(base: string) {
  return {
    name: 'demo/app',
    require: { [DEMO_PACKAGE.name]: `^${DEMO_PACKAGE.version}` },
    repositories: [{ type: 'composer', url: `${base}/repo` }, { 'packagist.org': false }],
    config: { 'secure-http': false },
  };
}

export function demoAuthJson(base: string, publicKey: string, privateKey: string) {
  return { 'http-basic': { [new URL(base).host]: { username: publicKey, password: privateKey } } };
}
