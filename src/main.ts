import type { AddressInfo } from 'node:net';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { createAuthenticator } from './authn/authenticate.ts';
import { createJwtVerifier } from './authn/jwt.ts';
import { createCachedJwtVerifier } from './authn/jwt-cache.ts';
import { PolicyError, ROUTES_FILE } from './policy/bundle.ts';
import { PolicyStore } from './policy/store.ts';
import { assertInvariantsHold } from './policy-tools/invariant-check.ts';
import { loadInvariants } from './policy-tools/invariants.ts';
import type { Config, JwtKeyConfig } from './config.ts';
import { createSecretBox } from './crypto/secret-box.ts';
import { AccessRepo } from './db/access-repo.ts';
import { openDb, type Db } from './db/client.ts';
import { migrate } from './db/migrations.ts';
import { createForwarder } from './pipeline/forward.ts';
import type { GateOutcome } from './pipeline/types.ts';
import { createDecisionLog } from './log/decision-log.ts';
import { markExpectContinue } from './http/expect-continue.ts';
import { createLogger, errorFields, type LineSink, type Logger } from './log/logger.ts';
import { createNodeHandlers } from './server.ts';
import { createNativeHandlers } from './team/index.ts';
import type { NativeHandlers } from './team/types.ts';

export type ServeConfig = Config & {
  upstreamUrl: URL;
  jwtIssuer: string;
  jwtAudience: string;
  jwtKey: JwtKeyConfig;
  tokenEncryptionKey: Buffer;
};

export interface GatewayOptions {
  /** Where decision lines go (default stdout). */
  decisionSink?: LineSink;
  /** Where operational log lines go (default stderr). */
  logSink?: LineSink;
  /** Reload on SIGHUP and on changes to the policy folder (serve: yes; tests: as they choose). */
  watchPolicy?: boolean;
  handleSignals?: boolean;
  /** Replace the native handlers (tests of the data plane alone). */
  natives?: NativeHandlers;
  onDecision?: (outcome: GateOutcome) => void | Promise<void>;
  /** Clock for invites and tokens (tests). */
  now?: () => number;
}

export interface Gateway {
  url: string;
  port: number;
  server: Server;
  db: Db;
  policy: PolicyStore;
  logger: Logger;
  /** Stops accepting, drains in-flight requests, then closes everything (cut after `drainMs`). */
  close(drainMs?: number): Promise<void>;
  /**
   * The SIGTERM sequence (CONTRACT §2): readyz answers 503 at once, requests are still
   * served for GATE_SHUTDOWN_GRACE_MS (so a load balancer that still routes here sees no
   * refused connection while it notices), then the listener closes and in-flight requests
   * get GATE_DRAIN_TIMEOUT_MS, then the logs are flushed and everything is closed.
   */
  shutdown(): Promise<void>;
  /** True from the start of a shutdown or close. */
  readonly draining: boolean;
}

/** The fault-handling settings (CONTRACT §2: GATE_SHUTDOWN_GRACE_MS, GATE_DRAIN_TIMEOUT_MS, GATE_DB_WRITE_TIMEOUT_MS, GATE_LOG_BUFFER_BYTES). */
export function tuningOf(config: Config): { shutdownGraceMs: number; drainTimeoutMs: number; dbWriteTimeoutMs: number; logBufferBytes: number } {
  return {
    shutdownGraceMs: config.shutdownGraceMs,
    drainTimeoutMs: config.drainTimeoutMs,
    dbWriteTimeoutMs: config.dbWriteTimeoutMs,
    logBufferBytes: config.logBufferBytes,
  };
}

/** The composition root: wires configuration into a running gateway. */
export async function startGateway(config: ServeConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const logger = createLogger(config.logLevel, options.logSink);
  const tuning = tuningOf(config);
  const db = await openDb({
    url: config.databaseUrl,
    authToken: config.databaseAuthToken,
    syncUrl: config.databaseSyncUrl,
    writeTimeoutMs: tuning.dbWriteTimeoutMs,
    logger,
  });
  try {
    const migrated = await migrate(db);
    if (migrated.applied.length > 0) logger.info('database migrated', { applied: migrated.applied, version: migrated.current });

    // Natives are built before the policy so a policy naming a native route nobody answers is refused.
    const natives: NativeHandlers =
      options.natives ??
      createNativeHandlers({
        db,
        secretBox: createSecretBox(config.tokenEncryptionKey),
        inviteUrl: config.inviteUrl,
        inviteTtlDays: config.inviteTtlDays,
        now: options.now ?? Date.now,
      });
    const policy = await PolicyStore.load(config.policyDir, {
      onReload: (next, prev) => logger.info('policy reloaded', { revision: next.revision, previous: prev.revision }),
      onReloadError: (err, kept) =>
        logger.error('policy reload rejected; keeping the last good policy', { revision: kept.revision, ...errorFields(err) }),
      validate: (bundle) => {
        for (const route of bundle.routes.routes) {
          if (route.to === 'native' && !natives[route.id]) {
            throw new PolicyError(`route "${route.id}" is to=native but the gateway has no handler for it`, ROUTES_FILE, route.line);
          }
        }
        // invariants.yaml is part of the policy: a bundle that breaks one never goes live.
        assertInvariantsHold(bundle, loadInvariants);
      },
    });
    logger.info('policy loaded', { revision: policy.current.revision, dir: config.policyDir });

    // Keys are imported once; verified tokens are cached until their exp (identity only, never roles).
    const jwt = createCachedJwtVerifier(
      await createJwtVerifier({
        key: config.jwtKey,
        issuer: config.jwtIssuer,
        audience: config.jwtAudience,
        algorithms: config.jwtAlgorithms,
      }),
    );
    const access = new AccessRepo(db);
    const forwarder = createForwarder({
      upstream: config.upstreamUrl,
      timeoutMs: config.upstreamTimeoutMs,
      // Every 502/504 and every cut answer leaves a trace with its cause (never credentials or the query).
      onFailure: (f) =>
        logger.warn('upstream request failed', { kind: f.kind, cause: f.cause, status: f.status, request_id: f.requestId, method: f.method, path: f.path }),
    });
    const decisionLog = createDecisionLog(options.decisionSink, {
      maxBufferBytes: tuning.logBufferBytes,
      warn: (msg, fields) => logger.warn(msg, fields),
    });
    const state = { draining: false };
    const { listener, onClientError } = createNodeHandlers({
      draining: () => state.draining,
      policy,
      db,
      access,
      authenticator: createAuthenticator({ jwt, access }),
      forwarder,
      natives,
      decisionLog,
      logger,
      mode: config.mode,
      ...(options.onDecision ? { onDecision: options.onDecision } : {}),
    });

    // Responses not yet finished: told to close their connection when a drain starts.
    const open = new Set<ServerResponse>();
    const handle = (incoming: Parameters<typeof listener>[0], outgoing: ServerResponse) => {
      // While shutting down, every answer closes its connection: clients reconnect elsewhere.
      if (state.draining) outgoing.shouldKeepAlive = false;
      else {
        open.add(outgoing);
        outgoing.once('close', () => open.delete(outgoing));
      }
      listener(incoming, outgoing);
    };
    const server = createServer(handle);
    server.on('clientError', onClientError);
    // Expect: 100-continue is answered by the decision path after an allow, not by Node on arrival.
    server.on('checkContinue', (incoming, outgoing) => {
      markExpectContinue(incoming, outgoing);
      handle(incoming, outgoing);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Keep-alive from clients: longer than typical client pools, shorter than load-balancer idle timeouts.
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;

    let stopping: Promise<void> | undefined;
    const onHup = () => void policy.reload();
    if (options.handleSignals) process.on('SIGHUP', onHup);
    if (options.watchPolicy) policy.watch();

    const address = server.address() as AddressInfo;
    const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
    return {
      url: `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`,
      port: address.port,
      server,
      db,
      policy,
      logger,
      get draining() {
        return state.draining;
      },
      close: (drainMs = 10_000) => stop(0, drainMs),
      shutdown: () => stop(tuning.shutdownGraceMs, tuning.drainTimeoutMs),
    };

    async function stop(graceMs: number, drainMs: number): Promise<void> {
      if (stopping) return stopping;
      stopping = (async () => {
        process.off('SIGHUP', onHup);
        // readyz answers 503 from now on; requests are still served through the grace period.
        state.draining = true;
        for (const res of open) if (!res.headersSent) res.shouldKeepAlive = false;
        if (graceMs > 0) {
          logger.info('draining: readyz is 503, still serving', { grace_ms: graceMs, drain_ms: drainMs });
          const sweep = setInterval(() => server.closeIdleConnections(), 100);
          await new Promise((r) => setTimeout(r, graceMs));
          clearInterval(sweep);
        }
        policy.close();
        // Drain: stop accepting, answer what is in flight with "Connection: close", close
        // keep-alive connections as they fall idle, and cut whatever is left at the deadline.
        await new Promise<void>((resolve) => {
          const sweep = setInterval(() => server.closeIdleConnections(), 100);
          const deadline = setTimeout(() => {
            if (open.size > 0) logger.warn('drain timeout: cutting in-flight requests', { in_flight: open.size });
            server.closeAllConnections();
          }, drainMs);
          server.close(() => {
            clearInterval(sweep);
            clearTimeout(deadline);
            resolve();
          });
          server.closeIdleConnections();
        });
        forwarder.close();
        decisionLog.flush();
        db.close();
      })();
      return stopping;
    }
  } catch (err) {
    db.close();
    throw err;
  }
}
