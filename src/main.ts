import type { AddressInfo } from 'node:net';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { createAuthenticator } from './authn/authenticate.ts';
import { createJwtVerifier } from './authn/jwt.ts';
import { createCachedJwtVerifier } from './authn/jwt-cache.ts';
import { PolicyError, ROUTES_FILE } from './policy/bundle.ts';
import { PolicyStore } from './policy/store.ts';
import type { Config, JwtKeyConfig } from './config.ts';
import { createSecretBox } from './crypto/secret-box.ts';
import { AccessRepo } from './db/access-repo.ts';
import { openDb, type Db } from './db/client.ts';
import { migrate } from './db/migrations.ts';
import { createForwarder } from './pipeline/forward.ts';
import type { GateOutcome } from './pipeline/types.ts';
import { createDecisionLog } from './log/decision-log.ts';
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
}

/** The composition root: wires configuration into a running gateway. */
export async function startGateway(config: ServeConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const logger = createLogger(config.logLevel, options.logSink);
  const db = await openDb({ url: config.databaseUrl, authToken: config.databaseAuthToken, syncUrl: config.databaseSyncUrl });
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
    const forwarder = createForwarder({ upstream: config.upstreamUrl, timeoutMs: config.upstreamTimeoutMs });
    const decisionLog = createDecisionLog(options.decisionSink);
    const { listener, onClientError } = createNodeHandlers({
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

    let draining = false;
    // Responses not yet finished: told to close their connection when a drain starts.
    const open = new Set<ServerResponse>();
    const server = createServer((incoming, outgoing) => {
      if (draining) outgoing.shouldKeepAlive = false;
      else {
        open.add(outgoing);
        outgoing.once('close', () => open.delete(outgoing));
      }
      listener(incoming, outgoing);
    });
    server.on('clientError', onClientError);
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
      async close(drainMs = 10_000) {
        process.off('SIGHUP', onHup);
        policy.close();
        // Drain: stop accepting, answer what is in flight with "Connection: close", close
        // keep-alive connections as they fall idle, and cut whatever is left at the deadline.
        draining = true;
        for (const res of open) if (!res.headersSent) res.shouldKeepAlive = false;
        await new Promise<void>((resolve) => {
          const sweep = setInterval(() => server.closeIdleConnections(), 100);
          const deadline = setTimeout(() => server.closeAllConnections(), drainMs);
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
      },
    };
  } catch (err) {
    db.close();
    throw err;
  }
}
