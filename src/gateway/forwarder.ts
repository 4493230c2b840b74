import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { problemBody, type Problem, problem } from '../http/problem.ts';
import { normalizeHeaderName } from './gate.ts';

/** RFC 9110 §7.6.1 hop-by-hop headers, plus the legacy ones proxies still see. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
]);

/**
 * Request headers never forwarded: credentials (the upstream trusts the gateway's
 * identity headers instead), anything the gateway sets itself, and Expect
 * (the gateway answers 100-continue itself).
 */
const NEVER_FORWARDED = new Set([
  'authorization',
  'host',
  'expect',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-real-ip',
  'x-request-id',
]);

export const IDENTITY_PREFIX = 'x-packagento-';

/** Names listed in Connection headers (RFC 9110 §7.6.1), normalized. */
function connectionNominated(rawHeaders: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (normalizeHeaderName(rawHeaders[i]!) !== 'connection') continue;
    for (const token of rawHeaders[i + 1]!.split(',')) {
      const t = token.trim();
      if (t) names.add(normalizeHeaderName(t));
    }
  }
  return names;
}

/**
 * The request headers sent upstream, as a raw name/value list (duplicates kept as
 * separate lines, never joined): what the caller sent minus hop-by-hop,
 * Connection-nominated, credential and `x-packagento-*` headers, plus the gateway's
 * own forwarding and identity headers.
 */
export function upstreamRequestHeaders(
  rawHeaders: readonly string[],
  added: { host: string; forwardedFor: string; forwardedProto: string; forwardedHost: string | undefined },
  identity: Record<string, string>,
): string[] {
  const nominated = connectionNominated(rawHeaders);
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = normalizeHeaderName(rawHeaders[i]!);
    if (HOP_BY_HOP.has(name) || NEVER_FORWARDED.has(name) || nominated.has(name) || name.startsWith(IDENTITY_PREFIX)) continue;
    out.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  out.push('host', added.host);
  out.push('x-forwarded-for', added.forwardedFor);
  out.push('x-forwarded-proto', added.forwardedProto);
  if (added.forwardedHost !== undefined) out.push('x-forwarded-host', added.forwardedHost);
  for (const [name, value] of Object.entries(identity)) out.push(name, value);
  return out;
}

/**
 * Response headers passed back: everything but hop-by-hop and Connection-nominated ones.
 * With a request id, the response carries the gateway's `x-request-id` (the one in the
 * decision log and sent upstream), as the gateway's own answers do.
 */
export function downstreamResponseHeaders(rawHeaders: readonly string[], requestId?: string): string[] {
  const nominated = connectionNominated(rawHeaders);
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = normalizeHeaderName(rawHeaders[i]!);
    if (HOP_BY_HOP.has(name) || nominated.has(name)) continue;
    if (requestId !== undefined && name === 'x-request-id') continue;
    out.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  if (requestId !== undefined) out.push('x-request-id', requestId);
  return out;
}

export interface ForwardRequest {
  incoming: IncomingMessage;
  outgoing: ServerResponse;
  method: string;
  /** Canonical path (what was authorized) plus the raw query. */
  path: string;
  identity: Record<string, string>;
  requestId: string;
}

export interface ForwardResult {
  status: number;
  /** Set when the gateway answered itself (502/504). */
  problem?: Problem;
}

export interface Forwarder {
  forward(req: ForwardRequest): Promise<ForwardResult>;
  close(): void;
}

export interface ForwarderOptions {
  upstream: URL;
  timeoutMs: number;
  /** Idle keep-alive sockets are dropped after this long (below the upstream's own keep-alive timeout). */
  freeSocketTimeoutMs?: number;
  maxSockets?: number;
}

/**
 * Forwards on raw Node streams through a pooled keep-alive agent: bodies stream
 * both ways, nothing is buffered. An idempotent request without a body that fails
 * on a reused keep-alive socket before any response byte is retried once on a
 * fresh socket; nothing else is ever retried.
 */
export function createForwarder(options: ForwarderOptions): Forwarder {
  const secure = options.upstream.protocol === 'https:';
  const mod = secure ? https : http;
  const agent = new mod.Agent({
    keepAlive: true,
    maxSockets: options.maxSockets ?? 256,
    maxFreeSockets: 64,
    timeout: options.freeSocketTimeoutMs ?? 4_000,
    scheduling: 'lifo',
  });
  const base = options.upstream.pathname.replace(/\/$/, '');
  const hostHeader = options.upstream.host;

  function answer(outgoing: ServerResponse, p: Problem, requestId: string): ForwardResult {
    const body = problemBody(p, { requestId });
    if (!outgoing.headersSent) {
      outgoing.writeHead(body.status, { 'content-type': 'application/problem+json', 'x-request-id': requestId });
      outgoing.end(JSON.stringify(body));
    } else {
      outgoing.destroy();
    }
    return { status: body.status, problem: p };
  }

  function forward(req: ForwardRequest): Promise<ForwardResult> {
    const { incoming, outgoing } = req;
    const headers = upstreamRequestHeaders(
      incoming.rawHeaders,
      {
        host: hostHeader,
        forwardedFor: incoming.socket.remoteAddress ?? '',
        forwardedProto: (incoming.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http',
        forwardedHost: incoming.headers.host,
      },
      req.identity,
    );
    const bodyless =
      (req.method === 'GET' || req.method === 'HEAD') &&
      incoming.headers['content-length'] === undefined &&
      incoming.headers['transfer-encoding'] === undefined;

    return new Promise<ForwardResult>((resolve) => {
      let settled = false;
      const done = (r: ForwardResult) => {
        if (!settled) {
          settled = true;
          resolve(r);
        }
      };

      const attempt = (retry: boolean) => {
        const upstreamReq = mod.request({
          agent,
          protocol: options.upstream.protocol,
          hostname: options.upstream.hostname,
          port: options.upstream.port || (secure ? 443 : 80),
          method: req.method,
          path: base + req.path,
          headers: headers as unknown as http.OutgoingHttpHeaders,
          setHost: false,
        });
        let responded = false;
        // Time to the response head; a stalled body afterwards is caught by the idle timeout below.
        const timer = setTimeout(() => {
          upstreamReq.destroy(new TimeoutError());
        }, options.timeoutMs);

        upstreamReq.on('response', (res) => {
          responded = true;
          clearTimeout(timer);
          res.setTimeout(options.timeoutMs, () => res.destroy(new TimeoutError()));
          if (outgoing.destroyed) {
            res.destroy();
            return done({ status: res.statusCode ?? 502 });
          }
          outgoing.writeHead(res.statusCode ?? 502, res.statusMessage, downstreamResponseHeaders(res.rawHeaders, req.requestId));
          res.pipe(outgoing);
          res.on('error', () => outgoing.destroy());
          res.on('end', () => done({ status: res.statusCode ?? 502 }));
          outgoing.on('close', () => {
            if (!res.complete) res.destroy();
            done({ status: res.statusCode ?? 502 });
          });
        });

        upstreamReq.on('error', (err) => {
          clearTimeout(timer);
          if (responded) return;
          const reused = (upstreamReq as { reusedSocket?: boolean }).reusedSocket === true;
          const code = (err as NodeJS.ErrnoException).code;
          if (retry && bodyless && reused && (code === 'ECONNRESET' || code === 'EPIPE')) {
            attempt(false);
            return;
          }
          if (err instanceof TimeoutError) {
            done(answer(outgoing, problem('upstream_timeout', 'the upstream did not answer in time'), req.requestId));
          } else {
            done(answer(outgoing, problem('upstream_unavailable', 'the upstream could not be reached'), req.requestId));
          }
        });

        // The caller went away: stop the upstream request too.
        outgoing.on('close', () => {
          if (!responded) {
            clearTimeout(timer);
            upstreamReq.destroy();
            done({ status: 499 });
          }
        });

        if (bodyless) upstreamReq.end();
        else incoming.pipe(upstreamReq);
      };
      attempt(true);
    });
  }

  return { forward, close: () => agent.destroy() };
}

class TimeoutError extends Error {
  constructor() {
    super('upstream timeout');
    this.name = 'TimeoutError';
  }
}
