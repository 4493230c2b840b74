import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Exactly what the upstream received. */
export interface Received {
  method: string;
  /** The raw request-target as it arrived. */
  url: string;
  /** Raw header name/value pairs, duplicates kept. */
  rawHeaders: string[];
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface EchoUpstream {
  url: string;
  received: Received[];
  /** Replace how the upstream answers (default: 200 JSON echo of method and path). */
  respond: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;
  close(): Promise<void>;
}

/** A real HTTP upstream on 127.0.0.1 that records every request it gets. */
export async function startEchoUpstream(): Promise<EchoUpstream> {
  const received: Received[] = [];
  const upstream: EchoUpstream = {
    url: '',
    received,
    respond: (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ upstream: true, method: req.method, url: req.url }));
    },
    close: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      received.push({ method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, headers: req.headers, body });
      upstream.respond(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  upstream.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  upstream.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return upstream;
}

/** Header values by lower-cased name (every occurrence). */
export function headerValues(r: Received, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < r.rawHeaders.length; i += 2) if (r.rawHeaders[i]!.toLowerCase() === name) out.push(r.rawHeaders[i + 1]!);
  return out;
}
