import type { AddressInfo } from 'node:net';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { createAuthenticator } from './authn/authenticate.ts';
import { createJwtVerifier } from './authn/jwt.ts';
import { createCachedJwtVerifier } from './authn/jwt-cache.ts';
import { PolicyError, ROUTES_FILE } from './policy/bundle.ts';
import { PolicyStore } from './policy/store.ts';
import { assertInvariantsHold } from './policy-tools/invariant-check.ts';
import { loadInvariants } from './policy-tools/invariants.ts';
import { VERSION, type Config, type ServeConfig } from './config.ts';
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
import { createMetrics, type GateMetrics } from './telemetry/metrics.ts';
import { createOtlpTracer } from './telemetry/otlp.ts';
import { buildOpenApi } from './team/openapi.ts';
import type { NativeHandlers } from './team/types.ts';
import { createOutboxChannels } from './outbox/channels.ts';
import { pendingCount } from './outbox/store.ts';
import { createOutboxDeliverer, type OutboxDeliverer, type OutboxDelivererOptions } from './outbox/deliverer.ts';

export type { ServeConfig };

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
  /** Outbox delivery loop tuning (tests: a short poll, a fast backoff); `false` runs no deliverer. */
  outbox?: false | Pick<OutboxDelivererOptions, 'pollMs' | 'leaseMs' | 'backoff' | 'holderId' | 'onDelivery'>;
}

export interface Gateway {
  url: string;
  port: number;
  /** The forward-auth listener (GATE_AUTHZ_PORT), when configured. */
  authz: { url: string; port: number; server: Server } | undefined;
  server: Server;
  db: Db;
  policy: PolicyStore;
  logger: Logger;
  /** The outbox delivery loop (undefined when turned off). */
  outbox: OutboxDeliverer | undefined;
  metrics: GateMetrics;
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
  const metrics = createMetrics();
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

    const secretBox = createSecretBox(config.tokenEncryptionKey);
    // Natives are built before the policy so a policy naming a native route nobody answers is refused.
    const natives: NativeHandlers =
      options.natives ??
      createNativeHandlers({
        db,
        secretBox,
        inviteUrl: config.inviteUrl,
        inviteTtlDays: config.inviteTtlDays,
        now: options.now ?? Date.now,
      });
    const policy = await PolicyStore.load(config.policyDir, {
      onReload: (next, prev) => {
        metrics.policyReload('ok');
        metrics.policyInfo(next.revision);
        logger.info('policy reloaded', { revision: next.revision, previous: prev.revision });
      },
      onUnchanged: (kept) => {
        metrics.policyReload('unchanged');
        logger.info('policy reload: no change', { revision: kept.revision });
      },
      onReloadError: (err, kept) => {
        metrics.policyReload('rejected');
        logger.error('policy reload rejected; keeping the last good policy', { revision: kept.revision, ...errorFields(err) });
      },
      validate: (bundle) => {
        for (const route of bundle.routes.routes) {
          if (route.to === 'native' && !natives[route.id]) {
            throw new PolicyError(`route "${route.id}" is to=native but the gateway has no handler for it`, ROUTES_FILE, route.line);
          }
        }
        // invariants.yaml is part of the policy: a bundle that breaks one never goes live.
        assertInvariantsHold(bundle, loadInvariants);
        // The team-and-roles API is the product's own: a folder that drops one of its routes
        // would silently switch part of it off.
        const declared = new Set(bundle.routes.routes.filter((r) => r.to === 'native').map((r) => r.id));
        const missing = Object.keys(natives).filter((id) => !declared.has(id));
        if (missing.length > 0) {
          throw new PolicyError(`the route map must keep the gateway's own routes; missing: ${missing.join(', ')} (to=native)`, ROUTES_FILE);
        }
      },
    });
    logger.info('policy loaded', { revision: policy.current.revision, dir: config.policyDir });
    metrics.policyInfo(policy.current.revision);

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
      onResponded: (seconds) => metrics.upstream(seconds),
      // Every 502/504 and every cut answer leaves a trace with its cause (never credentials or the query).
      onFailure: (f) => {
        metrics.upstreamError(f.kind);
        logger.warn('upstream request failed', {
          kind: f.kind,
          cause: f.cause,
          status: f.status,
          request_id: f.requestId,
          trace_id: f.traceId,
          method: f.method,
          path: f.path,
        });
      },
    });
    const tracer = config.otlpEndpoint
      ? createOtlpTracer({ endpoint: config.otlpEndpoint, serviceVersion: VERSION, onError: (err) => logger.warn('OTLP export failed', errorFields(err)) })
      : undefined;
    // Built on first request and again only when a reload changes the route map's revision.
    let openapiDoc: { revision: string; doc: unknown } | undefined;
    const openapi = () => {
      const bundle = policy.current;
      if (openapiDoc?.revision !== bundle.revision) {
        openapiDoc = { revision: bundle.revision, doc: buildOpenApi({ version: VERSION, natives, routes: bundle.routes.routes }) };
      }
      return openapiDoc.doc;
    };
    const decisionLog = createDecisionLog(options.decisionSink, {
      maxBufferBytes: tuning.logBufferBytes,
      warn: (msg, fields) => logger.warn(msg, fields),
    });
    const state = { draining: false };
    metrics.dbBusyFrom(() => db.stats.busy);
    metrics.logDroppedFrom(() => decisionLog.dropped);
    const { listener, onClientError, authzListener } = createNodeHandlers({
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
      metrics,
      openapi,
      ...(tracer ? { tracer } : {}),
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

    // The forward-auth listener: its own server on its own address, so nothing on the
    // public port can reach it (the public listener has no /_gate/authz).
    let authz: Gateway['authz'];
    if (config.authzPort !== undefined) {
      const authzServer = createServer(authzListener);
      authzServer.on('clientError', (_err, socket) => {
        if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        else socket.destroy();
      });
      try {
        await new Promise<void>((resolve, reject) => {
          authzServer.once('error', reject);
          authzServer.listen(config.authzPort, config.authzHost, () => {
            authzServer.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        server.close();
        throw err;
      }
      authzServer.keepAliveTimeout = 65_000;
      const a = authzServer.address() as AddressInfo;
      const h = config.authzHost === '0.0.0.0' || config.authzHost === '::' ? '127.0.0.1' : config.authzHost;
      authz = { url: `http://${h.includes(':') ? `[${h}]` : h}:${a.port}`, port: a.port, server: authzServer };
      logger.info('forward-auth listening', { host: config.authzHost, port: a.port });
    }

    // The outbox delivery loop: every gateway runs one; the lease in the database lets one deliver.
    let outbox: OutboxDeliverer | undefined;
    if (options.outbox !== false) {
      outbox = createOutboxDeliverer({
        db,
        secretBox,
        channels: createOutboxChannels(config),
        now: options.now ?? Date.now,
        logger,
        ...(options.outbox ?? {}),
        // gate_outbox_deliveries_total{channel,result}; a test's own hook still runs.
        onDelivery: (channel, result) => {
          metrics.outboxDelivery(channel, result);
          if (options.outbox) options.outbox.onDelivery?.(channel, result);
        },
      });
      outbox.start();
    }
    // gate_outbox_pending, read at each scrape.
    metrics.outboxPending(() => pendingCount(db));

    let stopping: Promise<void> | undefined;
    const onHup = () => void policy.reload();
    if (options.handleSignals) process.on('SIGHUP', onHup);
    if (options.watchPolicy) policy.watch();

    const address = server.address() as AddressInfo;
    const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
    return {
      url: `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`,
      port: address.port,
      authz,
      server,
      db,
      policy,
      logger,
      outbox,
      metrics,
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
        if (authz) {
          const s = authz.server;
          await new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeIdleConnections();
            setTimeout(() => s.closeAllConnections(), Math.min(drainMs, 2_000)).unref();
          });
        }
        forwarder.close();
        // After the drain, so the events of the last requests are in; deliveries in flight get a grace.
        await outbox?.stop();
        await tracer?.shutdown();
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
