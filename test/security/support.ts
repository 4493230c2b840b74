/**
 * Shared helpers for the data-plane and security suites: exact bytes over TCP,
 * a per-request marker so a test only ever looks at what *its* request caused
 * upstream and in the decision log, and the assertions every security test repeats.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { expect } from 'vitest';
import type { TestGateway } from '../helpers/gateway.ts';
import { basicAuth } from '../helpers/gateway.ts';
import { userJwt } from '../helpers/jwt.ts';
import type { Received } from '../helpers/upstream.ts';

/** The ordinary header every request carries; the upstream's copy tells which test sent it. */
export const MARK = 'x-test-case';

export interface Exchange {
  status: number;
  /** Response headers, lower-cased; duplicates joined with ", ". */
  headers: Record<string, string>;
  /** Response header name/value pairs as sent, duplicates kept. */
  rawHeaders: [string, string][];
  body: Buffer;
  text: string;
  json(): any;
  /** This request's marker. */
  mark: string;
  /** What the upstream received carrying this request's marker. */
  upstream(): Received[];
  /** Decision lines for this request (by the x-request-id the gateway answered with). */
  decisions(): Record<string, any>[];
}

export interface SendOptions {
  /** A seeded token name (HTTP Basic) or a user name (a fresh JWT). */
  as?: string;
  /** Exactly this Authorization value (after `as`, so both can be sent). */
  authorization?: string;
  /** Extra raw header lines, sent in order, duplicates kept. */
  headers?: [string, string][];
  body?: string | Buffer;
  /** Send the body with Transfer-Encoding: chunked, in pieces of this many bytes. */
  chunked?: number;
  /** Leave out the marker header (tests about header sets that must stay exact). */
  noMark?: boolean;
  timeoutMs?: number;
}

/** Credentials for `as`: a seeded project token's Basic pair, otherwise a user JWT. */
export async function authorizationFor(t: TestGateway, as: string): Promise<string> {
  const token = t.seeded.tokens.get(as);
  return token ? basicAuth(token.publicKey, token.privateKey) : `Bearer ${await userJwt(as)}`;
}

/**
 * Sends one request with the request-target exactly as given (no client-side
 * normalization of dots, escapes or case) on a fresh connection, and reads one response.
 */
export async function send(t: TestGateway, method: string, target: string | Buffer, opts: SendOptions = {}): Promise<Exchange> {
  const mark = randomUUID();
  const lines: string[] = [];
  const head: Buffer[] = [];
  const headerLines: [string, string][] = [['Host', `127.0.0.1:${t.gw.port}`]];
  if (!opts.noMark) headerLines.push([MARK, mark]);
  if (opts.as !== undefined) headerLines.push(['Authorization', await authorizationFor(t, opts.as)]);
  if (opts.authorization !== undefined) headerLines.push(['Authorization', opts.authorization]);
  headerLines.push(...(opts.headers ?? []));
  const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body);
  const explicitLength = (opts.headers ?? []).some(([k]) => /^(content-length|transfer-encoding)$/i.test(k));
  if (body !== undefined && !explicitLength) {
    headerLines.push(opts.chunked ? ['Transfer-Encoding', 'chunked'] : ['Content-Length', String(body.length)]);
  }
  headerLines.push(['Connection', 'close']);
  for (const [k, v] of headerLines) lines.push(`${k}: ${v}`);
  head.push(Buffer.from(`${method} `, 'latin1'), Buffer.isBuffer(target) ? target : Buffer.from(target, 'latin1'));
  head.push(Buffer.from(` HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`, 'latin1'));
  let payload: Buffer = Buffer.alloc(0);
  if (body !== undefined) {
    if (opts.chunked && !explicitLength) {
      const parts: Buffer[] = [];
      for (let i = 0; i < body.length; i += opts.chunked) {
        const piece = body.subarray(i, i + opts.chunked);
        parts.push(Buffer.from(piece.length.toString(16) + '\r\n'), piece, Buffer.from('\r\n'));
      }
      parts.push(Buffer.from('0\r\n\r\n'));
      payload = Buffer.concat(parts);
    } else {
      payload = body;
    }
  }
  const res = await exchangeBytes(t.gw.port, Buffer.concat([...head, payload]), { head: method === 'HEAD', timeoutMs: opts.timeoutMs });
  const requestId = res.headers['x-request-id'];
  return {
    ...res,
    mark,
    upstream: () => t.upstream.received.filter((r) => r.headers[MARK] === mark),
    decisions: () => (requestId === undefined ? [] : t.decisions.filter((d) => d.request_id === requestId)),
  };
}

type RawResult = Pick<Exchange, 'status' | 'headers' | 'rawHeaders' | 'body' | 'text' | 'json'>;

/**
 * Writes bytes to the port and reads one HTTP/1.1 response. A response is complete
 * at its Content-Length, at the end of its chunked body, or when the server closes.
 * Resolves with what arrived even if the server resets after answering (a 413 may
 * close the connection with request bytes still unread). Bounded by a timeout.
 */
export function exchangeBytes(port: number, bytes: Buffer, opts: { head?: boolean; timeoutMs?: number | undefined } = {}): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let finished = false;
    const finish = (err?: Error) => {
      if (finished) return;
      const parsed = parseResponse(Buffer.concat(chunks), true, opts.head === true);
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      if (parsed) resolve(parsed);
      else reject(err ?? new Error('connection closed before a full response: ' + Buffer.concat(chunks).toString('latin1').slice(0, 200)));
    };
    const timer = setTimeout(() => finish(new Error(`no response within ${opts.timeoutMs ?? 10_000} ms`)), opts.timeoutMs ?? 10_000);
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      if (parseResponse(Buffer.concat(chunks), false, opts.head === true)) finish();
    });
    socket.on('error', (e) => finish(e));
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    // A server that answers early and resets may make the write fail; the answer is what counts.
    socket.write(bytes, () => undefined);
  });
}

function parseResponse(buf: Buffer, ended: boolean, isHead: boolean): RawResult | undefined {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd < 0) return undefined;
  const [statusLine, ...lines] = buf.subarray(0, headEnd).toString('latin1').split('\r\n');
  const status = Number(statusLine!.split(' ')[1]);
  // Skip interim 1xx responses (100 Continue).
  if (status >= 100 && status < 200) return parseResponse(buf.subarray(headEnd + 4), ended, isHead);
  const headers: Record<string, string> = {};
  const rawHeaders: [string, string][] = [];
  for (const l of lines) {
    const i = l.indexOf(':');
    const name = l.slice(0, i).trim();
    const value = l.slice(i + 1).trim();
    rawHeaders.push([name, value]);
    const key = name.toLowerCase();
    headers[key] = headers[key] === undefined ? value : `${headers[key]}, ${value}`;
  }
  let body = buf.subarray(headEnd + 4);
  if (isHead || status === 204 || status === 304) {
    body = Buffer.alloc(0);
  } else if (headers['content-length'] !== undefined) {
    const len = Number(headers['content-length']);
    if (body.length < len) return undefined;
    body = body.subarray(0, len);
  } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const out: Buffer[] = [];
    let rest = body;
    for (;;) {
      const nl = rest.indexOf('\r\n');
      if (nl < 0) return undefined;
      const size = parseInt(rest.subarray(0, nl).toString('latin1'), 16);
      if (Number.isNaN(size)) return undefined;
      if (size === 0) break;
      if (rest.length < nl + 2 + size + 2) return undefined;
      out.push(rest.subarray(nl + 2, nl + 2 + size));
      rest = rest.subarray(nl + 2 + size + 2);
    }
    body = Buffer.concat(out);
  } else if (!ended) {
    return undefined;
  }
  const text = body.toString('utf8');
  return { status, headers, rawHeaders, body, text, json: () => JSON.parse(text) };
}

/** The request was refused with this status and problem code, and the upstream saw nothing of it. */
export function expectRefused(res: Exchange, status: number, code?: string): void {
  expect({ status: res.status, upstream: res.upstream().length }).toEqual({ status, upstream: 0 });
  if (code !== undefined) {
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ status, code });
  }
}

/** The request reached the upstream exactly once; returns what the upstream received. */
export function expectForwardedOnce(res: Exchange): Received {
  const got = res.upstream();
  expect(got, `status ${res.status}: ${res.text.slice(0, 200)}`).toHaveLength(1);
  return got[0]!;
}

/** Every `x-packagento-*` header the upstream received, by lower-cased name (all occurrences). */
export function identityOf(r: Received): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (let i = 0; i < r.rawHeaders.length; i += 2) {
    const name = r.rawHeaders[i]!.toLowerCase().replace(/[_.]/g, '-');
    if (name.startsWith('x-packagento-')) (out[name] ??= []).push(r.rawHeaders[i + 1]!);
  }
  return out;
}

/** The one decision line of this request. */
export function decisionOf(res: Exchange): Record<string, any> {
  const lines = res.decisions();
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

/** Waits until `check` is true, polling every 10 ms, for at most `timeoutMs`. */
export async function until(check: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
