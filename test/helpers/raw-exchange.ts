import net from 'node:net';

/** What a raw client got back on one connection. */
export interface Exchange {
  /** Status of the first response (0 when no head arrived). */
  status: number;
  headers: Record<string, string>;
  /** Body bytes of the first response as latin1 (what arrived, complete or not). */
  body: string;
  /** The first response arrived whole (its framing said where it ends and that much arrived). */
  complete: boolean;
  /** Everything received on the connection, as latin1. */
  raw: string;
  /** How the connection ended: closed by the peer, reset, or still open at the timeout. */
  ended: 'close' | 'reset' | 'timeout';
  ms: number;
}

/**
 * Writes `request` (one or more pipelined requests, exactly as given) on a fresh
 * loopback connection, then reads until the peer closes it, or `timeoutMs`.
 * `stopAfter` ends early (and destroys the socket) once that many bytes arrived.
 */
export function exchange(port: number, request: string | Buffer, opts: { timeoutMs?: number; stopAfter?: number; isHead?: boolean } = {}): Promise<Exchange> {
  const started = Date.now();
  const timeoutMs = opts.timeoutMs ?? 8000;
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (ended: Exchange['ended']) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parseFirst(Buffer.concat(chunks).toString('latin1'), opts.isHead ?? false), ended, ms: Date.now() - started });
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      size += c.length;
      if (opts.stopAfter !== undefined && size >= opts.stopAfter) finish('close');
    });
    socket.on('error', () => finish('reset'));
    socket.on('close', () => finish('close'));
    socket.write(request);
  });
}

function parseFirst(raw: string, isHead: boolean): Omit<Exchange, 'ended' | 'ms'> {
  const headEnd = raw.indexOf('\r\n\r\n');
  if (headEnd < 0) return { status: 0, headers: {}, body: '', complete: false, raw };
  const [statusLine, ...lines] = raw.slice(0, headEnd).split('\r\n');
  const status = Number(statusLine!.split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const rest = raw.slice(headEnd + 4);
  if (isHead || status === 204 || status === 304 || (status >= 100 && status < 200)) return { status, headers, body: '', complete: true, raw };
  if (headers['content-length'] !== undefined) {
    const len = Number(headers['content-length']);
    return { status, headers, body: rest.slice(0, len), complete: rest.length >= len, raw };
  }
  if (headers['transfer-encoding'] === 'chunked') {
    let body = '';
    let at = rest;
    for (;;) {
      const nl = at.indexOf('\r\n');
      if (nl < 0) return { status, headers, body, complete: false, raw };
      const n = parseInt(at.slice(0, nl), 16);
      if (Number.isNaN(n)) return { status, headers, body, complete: false, raw };
      if (n === 0) return { status, headers, body, complete: at.slice(nl + 2).startsWith('\r\n'), raw };
      if (at.length < nl + 2 + n + 2) return { status, headers, body: body + at.slice(nl + 2), complete: false, raw };
      body += at.slice(nl + 2, nl + 2 + n);
      at = at.slice(nl + 2 + n + 2);
    }
  }
  return { status, headers, body: rest, complete: true, raw };
}

/** A raw HTTP/1.1 request head (and body), nothing added but Host. */
export function rawRequestText(method: string, target: string, headers: Record<string, string> = {}, body = ''): string {
  return [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)].join('\r\n') + '\r\n\r\n' + body;
}
