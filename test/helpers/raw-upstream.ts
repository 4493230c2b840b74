import net from 'node:net';
import type { AddressInfo } from 'node:net';

/** One request as the raw upstream saw it (head only: the fault suite forwards bodyless requests). */
export interface RawSeen {
  method: string;
  target: string;
  head: string;
}

/**
 * What the upstream does with one request: write bytes to the socket, end it, reset it,
 * or write slowly. `ctx.timers` lets a script schedule writes that stop when the test moves on.
 */
export type RawScript = (socket: net.Socket, seen: RawSeen, ctx: { later(ms: number, fn: () => void): void; every(ms: number, fn: () => void): void }) => void;

export interface RawUpstream {
  url: string;
  /** Requests seen (heads), in order. */
  seen: RawSeen[];
  /** TCP connections accepted, and connections that have closed. */
  connections(): number;
  closed(): number;
  /** The script for the next requests (until set again); `ok` is the default. */
  script: RawScript;
  /** Clears every pending timer of the scripts and drops every connection. */
  reset(): void;
  close(): Promise<void>;
}

/** A plain, well-formed answer. */
export const ok =
  (body = 'GOOD'): RawScript =>
  (s) =>
    s.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);

/**
 * A misbehaving upstream on raw sockets (net.createServer): nothing is parsed or
 * validated on the way out, so a script can send any bytes at all. Requests are
 * split on the end of their head; bodies are not expected.
 */
export async function startRawUpstream(): Promise<RawUpstream> {
  const seen: RawSeen[] = [];
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let connections = 0;
  let closed = 0;
  const ctx = {
    later(ms: number, fn: () => void) {
      const t = setTimeout(() => {
        timers.delete(t);
        fn();
      }, ms);
      timers.add(t);
    },
    every(ms: number, fn: () => void) {
      const t = setInterval(fn, ms);
      timers.add(t);
    },
  };
  const upstream: RawUpstream = {
    url: '',
    seen,
    connections: () => connections,
    closed: () => closed,
    script: ok(),
    reset() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
    },
    close: async () => undefined,
  };
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => {
      closed++;
      sockets.delete(socket);
    });
    socket.on('error', () => undefined);
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) break;
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        const [method = '', target = ''] = (head.split('\r\n')[0] ?? '').split(' ');
        const r = { method, target, head };
        seen.push(r);
        if (!socket.destroyed) upstream.script(socket, r, ctx);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  upstream.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  upstream.close = () =>
    new Promise<void>((resolve) => {
      upstream.reset();
      server.close(() => resolve());
    });
  return upstream;
}
