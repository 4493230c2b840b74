import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { normalizeHeaderName } from '../http/headers.ts';
import { problem, sendProblem, type Problem } from '../http/problem.ts';

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
  'x-real-ip',
  'x-client-ip',
  'true-client-ip',
  'x-request-id',
]);

/** Every x-forwarded-* header (for, proto, host, port, prefix, uri, path…) is the gateway's to set. */
const FORWARDING_PREFIX = 'x-forwarded-';

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
  chunked = false,
): string[] {
  const nominated = connectionNominated(rawHeaders);
  const out: string[] = [];
  // A body that arrived chunked is sent chunked, explicitly: Node does not chunk every method by
  // default, and an unframed body would be read by the upstream as the next request.
  if (chunked) out.push('transfer-encoding', 'chunked');
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = normalizeHeaderName(rawHeaders[i]!);
    if (HOP_BY_HOP.has(name) || NEVER_FORWARDED.has(name) || nominated.has(name)) continue;
    if (name.startsWith(IDENTITY_PREFIX) || name.startsWith(FORWARDING_PREFIX)) continue;
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
  /** Called once when the exchange ends: the status sent (499 when the caller went away first). */
  onDone?: (status: number) => void;
}

export interface Forwarder {
  /** Starts forwarding; the answer is streamed to `outgoing` (or a 502/504 problem is sent). */
  forward(req: ForwardRequest): void;
  close(): void;
}

export interface ForwarderOptions {
  upstream: URL;
  /**
   * How long the upstream may stay silent: before its response head, and between
   * chunks of its body (a socket idle timeout, managed by Node's timer lists rather
   * than a timer per request).
   */
  timeoutMs: number;
  /** Idle keep-alive sockets are dropped after this long (below the upstream's own keep-alive timeout). */
  freeSocketTimeoutMs?: number;
  maxSockets?: number;
}

class UpstreamTimeout extends Error {
  constructor() {
    super('upstream timeout');
    this.name = 'UpstreamTimeout';
  }
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
  const hostname = options.upstream.hostname;
  const port = options.upstream.port || (secure ? 443 : 80);

  function answer(outgoing: ServerResponse, p: Problem, requestId: string): number {
    return sendProblem(outgoing, p, { requestId });
  }

  function forward(req: ForwardRequest): void {
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
      incoming.headers['transfer-encoding'] !== undefined,
    );
    const bodyless =
      (req.method === 'GET' || req.method === 'HEAD') &&
      incoming.headers['content-length'] === undefined &&
      incoming.headers['transfer-encoding'] === undefined;
    let finished = false;
    const done = (status: number) => {
      if (finished) return;
      finished = true;
      req.onDone?.(status);
    };

    let current: http.ClientRequest | undefined;
    // The caller went away before the answer was complete: stop the upstream exchange too.
    outgoing.once('close', () => {
      if (!outgoing.writableFinished) {
        current?.destroy();
        done(499);
      }
    });

    const attempt = (retry: boolean) => {
      let responded = false;
      const upstreamReq = mod.request({
        agent,
        hostname,
        port,
        method: req.method,
        path: base + req.path,
        headers: headers as unknown as http.OutgoingHttpHeaders,
        setHost: false,
        timeout: options.timeoutMs,
      });
      current = upstreamReq;
      upstreamReq.on('timeout', () => upstreamReq.destroy(new UpstreamTimeout()));
      upstreamReq.on('response', (res) => {
        responded = true;
        const status = res.statusCode ?? 502;
        if (outgoing.destroyed) {
          res.destroy();
          return done(499);
        }
        outgoing.writeHead(status, res.statusMessage, downstreamResponseHeaders(res.rawHeaders, req.requestId));
        res.pipe(outgoing);
        res.on('error', () => outgoing.destroy());
        res.on('end', () => done(status));
      });
      upstreamReq.on('error', (err) => {
        if (responded) {
          // The upstream broke off mid-body (or went silent): the caller cannot get a whole answer.
          outgoing.destroy();
          return done(502);
        }
        const code = (err as NodeJS.ErrnoException).code;
        if (retry && bodyless && upstreamReq.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE')) {
          attempt(false);
          return;
        }
        done(
          err instanceof UpstreamTimeout
            ? answer(outgoing, problem('upstream_timeout', 'the upstream did not answer in time'), req.requestId)
            : answer(outgoing, problem('upstream_unavailable', 'the upstream could not be reached'), req.requestId),
        );
      });
      if (bodyless) upstreamReq.end();
      else incoming.pipe(upstreamReq);
    };
    attempt(true);
  }

  return { forward, close: () => agent.destroy() };
}
