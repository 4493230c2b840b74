import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { normalizeHeaderName } from '../http/headers.ts';

export { headerSafe } from '../http/headers.ts';
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
 * Response headers passed back: everything but hop-by-hop, Connection-nominated and
 * `x-packagento-*` ones (in any spelling: the identity vocabulary is the gateway's, an
 * upstream never speaks it to a client). With a request id, the response carries the
 * gateway's `x-request-id` (the one in the decision log and sent upstream), as the
 * gateway's own answers do.
 */
export function downstreamResponseHeaders(rawHeaders: readonly string[], requestId?: string): string[] {
  const nominated = connectionNominated(rawHeaders);
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = normalizeHeaderName(rawHeaders[i]!);
    if (HOP_BY_HOP.has(name) || nominated.has(name) || name.startsWith(IDENTITY_PREFIX)) continue;
    if (requestId !== undefined && name === 'x-request-id') continue;
    out.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  if (requestId !== undefined) out.push('x-request-id', requestId);
  return out;
}

/** RFC 9110 §5.6.2 token: what a header name may be. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** What Node's writer accepts in a header value or reason phrase (HTAB, SP, VCHAR, obs-text). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Why an upstream response head cannot be relayed as it is, or undefined when it can.
 * The upstream is untrusted input: Node's client parser is lenient where its server
 * writer is strict (a control byte or DEL in the reason phrase, a status outside
 * 200–599), and a head the writer refuses would throw on the response path.
 */
export function invalidResponseHead(statusCode: number | undefined, statusMessage: string | undefined, rawHeaders: readonly string[]): string | undefined {
  if (statusCode === undefined || !Number.isInteger(statusCode) || statusCode < 200 || statusCode > 599) {
    return `status ${String(statusCode)} is not a final status (200-599) the gateway relays`;
  }
  if (statusMessage !== undefined && !FIELD_VALUE.test(statusMessage)) return 'the reason phrase has forbidden bytes';
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (!TOKEN.test(rawHeaders[i]!)) return 'a header name has forbidden bytes';
    if (!FIELD_VALUE.test(rawHeaders[i + 1]!)) return `header ${rawHeaders[i]!} has forbidden bytes`;
  }
  return undefined;
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
  /** Starts forwarding; the answer is streamed to `outgoing` (or a 502/504 problem is sent). Never throws. */
  forward(req: ForwardRequest): void;
  close(): void;
}

/**
 * How an upstream exchange failed: `connect` (refused, reset before any answer),
 * `timeout`, `invalid_response` (a head or framing the gateway will not relay),
 * `reset` (broken off after the head was relayed: the client's connection is cut).
 */
export type UpstreamFailureKind = 'connect' | 'timeout' | 'invalid_response' | 'reset';

export interface UpstreamFailure {
  kind: UpstreamFailureKind;
  /** What went wrong, for the operational log (an error code or a sentence; never request data). */
  cause: string;
  /** What the client got: 502, 504, or 0 when its connection was cut after the head. */
  status: number;
  requestId: string;
  method: string;
  /** The path forwarded, without its query. */
  path: string;
}

export interface ForwarderOptions {
  upstream: URL;
  /**
   * How long the upstream may take to send its response head (a deadline from the
   * request's start, so a head trickled a byte at a time still ends), and how long it
   * may stay silent between chunks of its body (a socket idle timeout).
   */
  timeoutMs: number;
  /** Idle keep-alive sockets are dropped after this long (below the upstream's own keep-alive timeout). */
  freeSocketTimeoutMs?: number;
  maxSockets?: number;
  /** Most informational (1xx) responses accepted before the final one; past it the answer is 502. */
  maxInformational?: number;
  /** Told about every failed exchange (logging at warn, the `gate_upstream_errors_total` counter). */
  onFailure?: (failure: UpstreamFailure) => void;
}

class UpstreamTimeout extends Error {
  constructor() {
    super('upstream timeout');
    this.name = 'UpstreamTimeout';
  }
}


/** RFC 9110 §9.2.2: a repeat has the same effect as one request. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Errors Node's client parser raises for bytes that are not HTTP (llhttp codes). */
const isParseError = (code: string | undefined) => code !== undefined && code.startsWith('HPE_');

/**
 * Forwards on raw Node streams through a pooled keep-alive agent: bodies stream
 * both ways, nothing is buffered. Every upstream answer is untrusted: its head is
 * checked before anything is written to the client, and whatever it sends ends in a
 * relayed answer, a 502/504 problem before the head, or a cut connection after it —
 * never an exception on the response path.
 *
 * Retries: an idempotent request without a body that fails on a *reused* keep-alive
 * socket (the upstream closed it while idle) before any response byte arrived, and
 * whose caller is still there, is retried once on a fresh socket. Nothing else is.
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
  const maxInformational = options.maxInformational ?? 8;

  function answer(outgoing: ServerResponse, p: Problem, requestId: string): number {
    if (outgoing.headersSent || outgoing.destroyed) {
      outgoing.destroy();
      return 0;
    }
    return sendProblem(outgoing, p, { requestId });
  }

  function forward(req: ForwardRequest): void {
    const { incoming, outgoing } = req;
    const bodyless =
      incoming.headers['content-length'] === undefined && incoming.headers['transfer-encoding'] === undefined;
    const retryable = bodyless && IDEMPOTENT.has(req.method);
    const pathOnly = req.path.split('?')[0] ?? req.path;
    let finished = false;
    let callerGone = false;
    const done = (status: number) => {
      if (finished) return;
      finished = true;
      req.onDone?.(status);
    };
    const fail = (kind: UpstreamFailureKind, cause: string, status: number) => {
      options.onFailure?.({ kind, cause, status, requestId: req.requestId, method: req.method, path: pathOnly });
      done(status);
    };

    let headers: string[];
    try {
      headers = upstreamRequestHeaders(
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
    } catch {
      done(answer(outgoing, problem('internal_error', 'internal error'), req.requestId));
      return;
    }

    let current: http.ClientRequest | undefined;
    // The caller went away before the answer was complete: stop the upstream exchange too,
    // and never start another one for it.
    outgoing.once('close', () => {
      if (!outgoing.writableFinished) {
        callerGone = true;
        current?.destroy();
        done(499);
      }
    });

    const attempt = (retry: boolean) => {
      // waiting: no head yet; relaying: the head went to the client; settled: answered or failed.
      let state: 'waiting' | 'relaying' | 'settled' = 'waiting';
      let informational = 0;
      let bytesAtStart = 0;
      let response: IncomingMessage | undefined;
      let upstreamReq: http.ClientRequest;
      try {
        upstreamReq = mod.request({
          agent,
          hostname,
          port,
          method: req.method,
          path: base + req.path,
          headers: headers as unknown as http.OutgoingHttpHeaders,
          setHost: false,
          timeout: options.timeoutMs,
        });
      } catch {
        // A header Node refuses to send (a gateway bug: identity values are header-safe by construction).
        done(answer(outgoing, problem('internal_error', 'internal error'), req.requestId));
        return;
      }
      current = upstreamReq;
      const headDeadline = setTimeout(() => upstreamReq.destroy(new UpstreamTimeout()), options.timeoutMs);

      const reject = (reason: string) => {
        // Before the head: the upstream's answer is not relayable; nothing of it reaches the client.
        if (state !== 'waiting') return;
        state = 'settled';
        clearTimeout(headDeadline);
        upstreamReq.destroy();
        if (callerGone) return done(499);
        fail('invalid_response', reason, answer(outgoing, problem('upstream_invalid_response', 'the upstream sent an answer the gateway cannot relay'), req.requestId));
      };

      upstreamReq.on('socket', (socket) => {
        bytesAtStart = socket.bytesRead;
      });
      upstreamReq.on('timeout', () => upstreamReq.destroy(new UpstreamTimeout()));
      upstreamReq.on('information', (info) => {
        if (++informational > maxInformational) reject(`more than ${maxInformational} informational (1xx) responses`);
        else if (info.statusCode === 101) reject('101 Switching Protocols to a request that asked for no upgrade');
      });
      // A 101 with an Upgrade header (or any upgrade): the gateway never asks upstreams for one.
      upstreamReq.on('upgrade', (_res, socket) => {
        socket.destroy();
        reject('101 Switching Protocols to a request that asked for no upgrade');
      });
      upstreamReq.on('response', (res) => {
        if (state !== 'waiting') {
          res.destroy();
          return;
        }
        clearTimeout(headDeadline);
        if (callerGone || outgoing.destroyed) {
          state = 'settled';
          res.destroy();
          return done(499);
        }
        const invalid = invalidResponseHead(res.statusCode, res.statusMessage, res.rawHeaders);
        if (invalid !== undefined) {
          res.destroy();
          return reject(invalid);
        }
        const status = res.statusCode!;
        try {
          outgoing.writeHead(status, res.statusMessage, downstreamResponseHeaders(res.rawHeaders, req.requestId));
        } catch (err) {
          // Backstop: anything else Node's writer refuses. Nothing was written yet.
          res.destroy();
          return reject((err as NodeJS.ErrnoException).code ?? 'the response head cannot be written');
        }
        state = 'relaying';
        response = res;
        res.pipe(outgoing);
        res.on('error', (err) => {
          if (state !== 'relaying' || res.complete) return;
          state = 'settled';
          outgoing.destroy();
          if (callerGone) return done(499);
          fail(err instanceof UpstreamTimeout ? 'timeout' : 'reset', causeOf(err), 0);
        });
        res.on('end', () => {
          if (state === 'relaying') state = 'settled';
          done(status);
        });
      });
      upstreamReq.on('error', (err) => {
        clearTimeout(headDeadline);
        if (state === 'relaying' && response?.complete) {
          // Bytes after a complete answer (a body on a HEAD, 204 or 304, more than Content-Length):
          // Node discards that socket; the answer itself is whole and is relayed.
          return;
        }
        if (state === 'relaying') {
          // The upstream broke off mid-body (or went silent): the caller cannot get a whole answer.
          state = 'settled';
          outgoing.destroy();
          if (callerGone) return done(499);
          return fail(err instanceof UpstreamTimeout ? 'timeout' : 'reset', causeOf(err), 0);
        }
        if (state === 'settled') return;
        state = 'settled';
        // The caller left (its close destroyed this request): nothing to answer, nothing to retry.
        if (callerGone) return done(499);
        const code = (err as NodeJS.ErrnoException).code;
        const silent = (upstreamReq.socket?.bytesRead ?? bytesAtStart) === bytesAtStart;
        if (retry && retryable && upstreamReq.reusedSocket && silent && (code === 'ECONNRESET' || code === 'EPIPE')) {
          attempt(false);
          return;
        }
        if (err instanceof UpstreamTimeout) {
          return fail('timeout', 'no response head in time', answer(outgoing, problem('upstream_timeout', 'the upstream did not answer in time'), req.requestId));
        }
        if (isParseError(code)) {
          return fail('invalid_response', causeOf(err), answer(outgoing, problem('upstream_invalid_response', 'the upstream sent an answer the gateway cannot relay'), req.requestId));
        }
        fail('connect', causeOf(err), answer(outgoing, problem('upstream_unavailable', 'the upstream could not be reached'), req.requestId));
      });
      if (bodyless) upstreamReq.end();
      else incoming.pipe(upstreamReq);
    };
    attempt(true);
  }

  return { forward, close: () => agent.destroy() };
}

/** An error's code and message, for the log (Node's network errors carry no request data). */
function causeOf(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e instanceof UpstreamTimeout) return 'upstream went silent';
  return e?.code ? `${e.code}: ${e.message}` : String(e?.message ?? e);
}
