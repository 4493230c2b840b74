import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { problem, sendProblem, type Problem } from '../http/problem.ts';

import { downstreamResponseHeaders, invalidResponseHead, upstreamRequestHeaders } from './forward-headers.ts';

export interface ForwardRequest {
  incoming: IncomingMessage;
  outgoing: ServerResponse;
  method: string;
  /** Canonical path (what was authorized) plus the raw query. */
  path: string;
  /** The caller's one Host (hygiene checked it), sent as X-Forwarded-Host. */
  host: string;
  /** The caller's body is chunked / there is no body at all (hygiene's framing facts). */
  chunked: boolean;
  bodyless: boolean;
  identity: Record<string, string>;
  requestId: string;
  /** The request's trace id, for the log line of a failed exchange. */
  traceId?: string;
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
  traceId: string | undefined;
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
  /** The upstream's response head was accepted this many seconds after the request was sent (metrics). */
  onResponded?: (seconds: number) => void;
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
    const retryable = req.bodyless && IDEMPOTENT.has(req.method);
    let finished = false;
    let callerGone = false;
    const done = (status: number) => {
      if (finished) return;
      finished = true;
      req.onDone?.(status);
    };
    const fail = (kind: UpstreamFailureKind, cause: string, status: number) => {
      const path = req.path.split('?')[0] ?? req.path;
      options.onFailure?.({ kind, cause, status, requestId: req.requestId, traceId: req.traceId, method: req.method, path });
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
          forwardedHost: req.host,
        },
        req.identity,
        req.chunked,
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
      const sent = options.onResponded ? process.hrtime.bigint() : 0n;
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
        options.onResponded?.(Number(process.hrtime.bigint() - sent) / 1e9);
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
      if (req.bodyless) upstreamReq.end();
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
