import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { SMTPServer } from 'smtp-server';

export interface MailSink {
  /** `smtp://127.0.0.1:PORT`, for GATE_SMTP_URL. */
  url: string;
  /** Where each message lands, as `<time>-<n>.eml`. */
  dir: string;
  close(): Promise<void>;
}

/**
 * The demo's local SMTP server (the `smtp-server` package) on loopback: it accepts
 * every message and writes it, as received, to DIR/<time>-<n>.eml, so a newcomer
 * can open the invite email the gateway sent. Demo only: no TLS, no authentication.
 */
export async function startMailSink(dir: string, host = '127.0.0.1'): Promise<MailSink> {
  await mkdir(dir, { recursive: true });
  let n = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    banner: 'Packagento Gate demo mail sink',
    size: 1024 * 1024,
    onData(stream, _session, callback) {
      const name = `${new Date().toISOString().replace(/[:.]/g, '-')}-${String(++n).padStart(3, '0')}.eml`;
      pipeline(stream, createWriteStream(join(dir, name))).then(() => callback(), callback);
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://${host}:${port}`,
    dir,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
