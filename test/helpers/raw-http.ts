import net from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  json: () => any;
}

/**
 * Sends bytes exactly as given over a TCP socket on loopback (no client-side URL
 * normalization) and reads one response. Bounded by a timeout.
 */
export function rawRequest(port: number, request: string | Buffer, timeoutMs = 5000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('raw request timed out'));
    }, timeoutMs);
    socket.on('data', (c) => {
      chunks.push(c);
      const parsed = tryParse(Buffer.concat(chunks));
      if (parsed) {
        clearTimeout(timer);
        socket.destroy();
        resolve(parsed);
      }
    });
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      const parsed = tryParse(Buffer.concat(chunks), true);
      if (parsed) resolve(parsed);
      else reject(new Error('connection closed before a full response: ' + Buffer.concat(chunks).toString('latin1').slice(0, 200)));
    });
    socket.write(request);
  });
}

function tryParse(buf: Buffer, ended = false): RawResponse | undefined {
  const text = buf.toString('latin1');
  const headEnd = text.indexOf('\r\n\r\n');
  if (headEnd < 0) return undefined;
  const [statusLine, ...lines] = text.slice(0, headEnd).split('\r\n');
  const status = Number(statusLine!.split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = text.slice(headEnd + 4);
  if (headers['content-length'] !== undefined) {
    const len = Number(headers['content-length']);
    if (Buffer.byteLength(body, 'latin1') < len) return undefined;
    body = body.slice(0, len);
  } else if (headers['transfer-encoding'] === 'chunked') {
    if (!body.endsWith('0\r\n\r\n')) return undefined;
    let out = '';
    let rest = body;
    for (;;) {
      const nl = rest.indexOf('\r\n');
      const size = parseInt(rest.slice(0, nl), 16);
      if (size === 0) break;
      out += rest.slice(nl + 2, nl + 2 + size);
      rest = rest.slice(nl + 2 + size + 2);
    }
    body = out;
  } else if (!ended && status !== 204 && status !== 304) {
    return undefined;
  }
  const utf8 = Buffer.from(body, 'latin1').toString('utf8');
  return { status, headers, body: utf8, json: () => JSON.parse(utf8) };
}

/** Builds a raw HTTP/1.1 request. */
export function rawHttp(method: string, target: string, headers: [string, string][] = [], body = ''): string {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', ...headers.map(([k, v]) => `${k}: ${v}`)];
  if (body !== '' && !headers.some(([k]) => k.toLowerCase() === 'content-length' || k.toLowerCase() === 'transfer-encoding')) {
    lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  }
  lines.push('Connection: close');
  return lines.join('\r\n') + '\r\n\r\n' + body;
}
