/**
 * The gateway as the per-stage cost ledger runs it: the composition of `startGateway`
 * (src/main.ts) rebuilt here, with the stages named in BENCH_STAGE_OFF replaced by their
 * cheapest stand-ins. BENCH ONLY: several stand-ins remove checks (`decide` allows every
 * action), so this server must never front anything but the bench's own upstream.
 *
 *   BENCH_STAGE_OFF=log,db   comma-separated stages (or `all`)
 *   BENCH_FORWARDER=simple   forward with a minimal node:http forwarder (header filtering kept; no head
 *                            deadline, no 1xx/101/upgrade handling, no retry, no response-head checks)
 *   BENCH_FORWARDER=undici   the same minimal forwarder on an undici Pool
 *
 * Stand-ins (what each removes; see bench/README-ledger.md for the hooks the gateway needs to
 * replace the stages this file cannot reach from outside):
 *   log       the decision log: no JSON.stringify, no timestamp, no write
 *   db        the per-request database read: the role lookup and the token lookup answer from the
 *             previous identical query (no prepared statement, no PRAGMA data_version)
 *   authn     credentials: the JWT cache / token hash + lookup answer from the previous identical
 *             credentials (parsing the Authorization header is kept; it is in the gate)
 *   identity  the eight x-packagento-* / x-request-id headers are not sent upstream (they are
 *             still built: the pipeline builds them before the forwarder sees them)
 *   headers   request/response header filtering in the forwarder: caller headers passed through
 *             minus Authorization/Host/Connection (one toLowerCase each), response headers as received
 *   users     the user recorder (a Map probe per request; a write every 10 min per user)
 *   decide    the decision table: holds/allows answer true without a lookup
 *   uuid      crypto.randomUUID (request id, decision id) replaced by a counter
 */
import { randomUUID as realRandomUUID } from 'node:crypto';
import crypto from 'node:crypto';
import http, { createServer, type ServerResponse } from 'node:http';
import { syncBuiltinESMExports } from 'node:module';
import { Pool } from 'undici';
import { createNodeHandlers } from '../src/server.ts';
import { createAuthenticator, type Authenticator, type Credentials } from '../src/authn/authenticate.ts';
import { createJwtVerifier } from '../src/authn/jwt.ts';
import { createCachedJwtVerifier } from '../src/authn/jwt-cache.ts';
import { PolicyStore } from '../src/policy/store.ts';
import type { ServeConfig } from '../src/main.ts';
import { createSecretBox } from '../src/crypto/secret-box.ts';
import { AccessRepo, type TokenRecord, type UserAccess, type UserAccessQuery } from '../src/db/access-repo.ts';
import { openDb } from '../src/db/client.ts';
import { UserRecorder } from '../src/db/user-recorder.ts';
import { migrate } from '../src/db/migrations.ts';
import { createForwarder, type ForwardRequest, type Forwarder } from '../src/pipeline/forward.ts';
import { downstreamResponseHeaders, upstreamRequestHeaders } from '../src/pipeline/forward-headers.ts';
import { createDecisionLog, type DecisionLog } from '../src/log/decision-log.ts';
import { createLogger } from '../src/log/logger.ts';
import { createNativeHandlers } from '../src/team/index.ts';

export const STAGES = ['log', 'db', 'authn', 'identity', 'headers', 'users', 'decide', 'uuid'] as const;
export type Stage = (typeof STAGES)[number];

export function stagesOff(value: string | undefined): Set<Stage> {
  if (!value) return new Set();
  if (value === 'all') return new Set(STAGES);
  const out = new Set<Stage>();
  for (const s of value.split(',').map((x) => x.trim()).filter(Boolean)) {
    if (!(STAGES as readonly string[]).includes(s)) throw new Error(`BENCH_STAGE_OFF: unknown stage "${s}" (known: ${STAGES.join(', ')}, all)`);
    out.add(s as Stage);
  }
  return out;
}

/** `db`: the previous identical query's answer (field compares only, no key building). */
class LastAnswerAccess extends AccessRepo {
  #q: UserAccessQuery | undefined;
  #a: UserAccess | undefined;
  #hash: Buffer | undefined;
  #token: TokenRecord | undefined;

  override async userAccess(q: UserAccessQuery): Promise<UserAccess> {
    const p = this.#q;
    if (p && this.#a && p.userId === q.userId && p.workspaceId === q.workspaceId && p.projectId === q.projectId && p.tokenId === q.tokenId && p.guestScope === q.guestScope) {
      return this.#a;
    }
    this.#a = await super.userAccess(q);
    this.#q = { ...q };
    return this.#a;
  }

  override async tokenBySecretHash(hash: Buffer): Promise<TokenRecord | undefined> {
    if (this.#hash && this.#token && this.#hash.equals(hash)) return this.#token;
    this.#token = await super.tokenBySecretHash(hash);
    this.#hash = Buffer.from(hash);
    return this.#token;
  }
}

/** `authn`: the previous identical credentials' principal. */
function lastAnswerAuthenticator(real: Authenticator): Authenticator {
  let bearer: { token: string; result: Awaited<ReturnType<Authenticator['user']>> } | undefined;
  let basic: { user: string; password: string; result: Awaited<ReturnType<Authenticator['token']>> } | undefined;
  return {
    async user(c: Credentials) {
      if (c.scheme === 'bearer' && bearer?.token === c.token) return bearer.result;
      const result = await real.user(c);
      if (c.scheme === 'bearer') bearer = { token: c.token, result };
      return result;
    },
    async token(c: Credentials) {
      if (c.scheme === 'basic' && basic?.user === c.user && basic.password === c.password) return basic.result;
      const result = await real.token(c);
      if (c.scheme === 'basic') basic = { user: c.user, password: c.password, result };
      return result;
    },
  };
}

const NO_IDENTITY: Record<string, string> = Object.freeze({}) as Record<string, string>;

/**
 * A forwarder with the same wiring as src/pipeline/forward.ts (pooled keep-alive agent, idle
 * timeout, caller-gone handling; no retry, which costs nothing on the success path), used for
 * the `headers` stand-in (`filter: false`) and for the undici client (`client: 'undici'`, with
 * the gateway's own header filtering).
 */
function benchForwarder(upstream: URL, timeoutMs: number, opts: { client: 'node' | 'undici'; filter: boolean }): Forwarder {
  const hostHeader = upstream.host;
  const base = upstream.pathname.replace(/\/$/, '');

  const requestHeaders = (req: ForwardRequest): string[] => {
    const { incoming } = req;
    const added = { host: hostHeader, forwardedFor: incoming.socket.remoteAddress ?? '', forwardedProto: 'http', forwardedHost: req.host };
    if (opts.filter) return upstreamRequestHeaders(incoming.rawHeaders, added, req.identity, req.chunked);
    const out: string[] = [];
    const raw = incoming.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      if (name === 'authorization' || name === 'host' || name === 'connection') continue;
      out.push(raw[i]!, raw[i + 1]!);
    }
    out.push('host', added.host, 'x-forwarded-for', added.forwardedFor, 'x-forwarded-proto', 'http');
    if (added.forwardedHost !== undefined) out.push('x-forwarded-host', added.forwardedHost);
    for (const name in req.identity) out.push(name, req.identity[name]!);
    return out;
  };
  const responseHeaders = (raw: string[], requestId: string): string[] => {
    if (opts.filter) return downstreamResponseHeaders(raw, requestId);
    raw.push('x-request-id', requestId);
    return raw;
  };
  const fail = (outgoing: ServerResponse, requestId: string) => {
    if (outgoing.headersSent) return void outgoing.destroy();
    outgoing.writeHead(502, { 'content-type': 'application/problem+json', 'x-request-id': requestId });
    outgoing.end('{"code":"upstream_unavailable"}');
  };

  if (opts.client === 'undici') {
    const pool = new Pool(upstream.origin, { connections: 256, keepAliveTimeout: 4_000, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    return {
      forward(req) {
        const { incoming, outgoing } = req;
        const ac = new AbortController();
        outgoing.once('close', () => {
          if (!outgoing.writableFinished) ac.abort();
        });
        pool.stream(
          { path: base + req.path, method: req.method as 'GET', headers: requestHeaders(req), body: req.bodyless ? null : incoming, signal: ac.signal },
          ({ statusCode, headers }) => {
            const flat: string[] = [];
            for (const name in headers) {
              const v = headers[name]!;
              if (Array.isArray(v)) for (const x of v) flat.push(name, x);
              else flat.push(name, v);
            }
            outgoing.writeHead(statusCode, responseHeaders(flat, req.requestId));
            return outgoing;
          },
          (err) => {
            if (err) fail(outgoing, req.requestId);
          },
        );
      },
      close: () => void pool.close(),
    };
  }

  const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, timeout: 4_000, scheduling: 'lifo' });
  return {
    forward(req) {
      const { incoming, outgoing } = req;
      const up = http.request({
        agent,
        hostname: upstream.hostname,
        port: upstream.port || 80,
        method: req.method,
        path: base + req.path,
        headers: requestHeaders(req) as unknown as http.OutgoingHttpHeaders,
        setHost: false,
        timeout: timeoutMs,
      });
      outgoing.once('close', () => {
        if (!outgoing.writableFinished) up.destroy();
      });
      up.on('timeout', () => up.destroy(new Error('upstream timeout')));
      up.on('response', (res) => {
        outgoing.writeHead(res.statusCode ?? 502, res.statusMessage, responseHeaders(res.rawHeaders, req.requestId));
        res.pipe(outgoing);
        res.on('error', () => outgoing.destroy());
      });
      up.on('error', () => fail(outgoing, req.requestId));
      if (req.bodyless) up.end();
      else incoming.pipe(up);
    },
    close: () => agent.destroy(),
  };
}

/**
 * `startGateway` with stand-ins: the same pieces, wired the same way (the request listener
 * with drain tracking, keep-alive timeouts), minus migration logging, policy watching and signals.
 */
export async function startLedgerGateway(config: ServeConfig, off: Set<Stage>, forwarderKind: 'node' | 'undici' | 'simple'): Promise<http.Server> {
  if (off.has('uuid')) {
    let n = 0;
    const prefix = realRandomUUID().slice(0, 24);
    (crypto as { randomUUID: () => string }).randomUUID = () => prefix + (++n).toString(16).padStart(12, '0');
    syncBuiltinESMExports();
  }
  if (off.has('users')) UserRecorder.prototype.seen = () => undefined;

  const logger = createLogger(config.logLevel);
  const db = await openDb({ url: config.databaseUrl });
  await migrate(db);
  const natives = createNativeHandlers({
    db,
    secretBox: createSecretBox(config.tokenEncryptionKey),
    inviteUrl: config.inviteUrl,
    inviteTtlDays: config.inviteTtlDays,
    now: Date.now,
  });
  const policy = await PolicyStore.load(config.policyDir);
  if (off.has('decide')) {
    const table = policy.current.table as { holds: (...a: unknown[]) => boolean; allows: (...a: unknown[]) => boolean };
    table.holds = () => true;
    table.allows = () => true;
  }
  const jwt = createCachedJwtVerifier(
    await createJwtVerifier({ key: config.jwtKey, issuer: config.jwtIssuer, audience: config.jwtAudience, algorithms: config.jwtAlgorithms }),
  );
  const access = off.has('db') ? new LastAnswerAccess(db) : new AccessRepo(db);
  const realAuthenticator = createAuthenticator({ jwt, access });
  const authenticator = off.has('authn') ? lastAnswerAuthenticator(realAuthenticator) : realAuthenticator;
  let forwarder =
    forwarderKind !== 'node' || off.has('headers')
      ? benchForwarder(config.upstreamUrl, config.upstreamTimeoutMs, { client: forwarderKind === 'undici' ? 'undici' : 'node', filter: !off.has('headers') })
      : createForwarder({ upstream: config.upstreamUrl, timeoutMs: config.upstreamTimeoutMs });
  if (off.has('identity')) {
    const inner = forwarder;
    forwarder = {
      forward(req) {
        req.identity = NO_IDENTITY;
        inner.forward(req);
      },
      close: () => inner.close(),
    };
  }
  const decisionLog: DecisionLog = off.has('log') ? { write: () => undefined, flush: () => undefined, dropped: 0 } : createDecisionLog();
  const { listener, onClientError } = createNodeHandlers({ policy, db, access, authenticator, forwarder, natives, decisionLog, logger, mode: config.mode });

  // As startGateway: every open response is tracked for draining.
  const open = new Set<ServerResponse>();
  const server = createServer((incoming, outgoing) => {
    open.add(outgoing);
    outgoing.once('close', () => open.delete(outgoing));
    listener(incoming, outgoing);
  });
  server.on('clientError', onClientError);
  await new Promise<void>((resolve) => server.listen(config.port, config.host, resolve));
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  return server;
}
