import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { Webhook } from 'standardwebhooks';
import { openDb, type Db } from '../../src/db/client.ts';
import { migrate } from '../../src/db/migrations.ts';

export const WEBHOOK_SECRET = 'whsec_' + randomBytes(24).toString('base64');

/** A real libSQL file in a fresh temp folder, migrated. */
export async function tempDb(dir?: string): Promise<{ db: Db; dir: string; url: string }> {
  const folder = dir ?? (await mkdtemp(join(tmpdir(), 'gate-outbox-')));
  const url = `file:${join(folder, 'gate.db')}`;
  const db = await openDb({ url });
  await migrate(db);
  return { db, dir: folder, url };
}

/** Polls `check` every 10 ms until it returns true, or fails after `ms`. */
export async function waitFor(check: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

export interface SmtpSink {
  port: number;
  url: string;
  mails: ParsedMail[];
  /** Raw RCPT TO addresses, per message. */
  envelopes: string[][];
  /** Stop listening (connections are refused until `up()`). */
  down(): Promise<void>;
  /** Listen again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

/** A real SMTP server (smtp-server) on 127.0.0.1; every message parsed with mailparser. */
export async function startSmtpSink(): Promise<SmtpSink> {
  const mails: ParsedMail[] = [];
  const envelopes: string[][] = [];
  const make = () =>
    new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData(stream, session, callback) {
        simpleParser(stream)
          .then((mail) => {
            mails.push(mail);
            envelopes.push(session.envelope.rcptTo.map((r) => r.address));
            callback();
          })
          .catch(callback);
      },
    });
  let server = make();
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        port = (server.server.address() as AddressInfo).port;
        resolve();
      });
    });
  const stop = () => new Promise<void>((resolve) => server.close(() => resolve()));
  await listen();
  let listening = true;
  return {
    get port() {
      return port;
    },
    get url() {
      return `smtp://127.0.0.1:${port}`;
    },
    mails,
    envelopes,
    async down() {
      if (!listening) return;
      listening = false;
      await stop();
    },
    async up() {
      if (listening) return;
      server = make();
      await listen();
      listening = true;
    },
    async close() {
      if (listening) await stop();
      listening = false;
    },
  };
}

export interface ReceivedWebhook {
  id: string;
  body: Record<string, any>;
  at: number;
  status: number;
}

export interface WebhookReceiver {
  url: string;
  /** Every request that carried a valid signature, in arrival order. */
  received: ReceivedWebhook[];
  /** Requests whose signature did not verify. */
  rejected: number;
  /** Distinct webhook-ids answered 2xx, in first-arrival order (the receiver's dedup). */
  deliveredIds(): string[];
  /** Decides the status per request (default 200). */
  respond: (id: string, body: Record<string, any>, nth: number) => number | Promise<number>;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A real HTTP receiver on 127.0.0.1 that verifies Standard Webhooks signatures and dedups by webhook-id. */
export async function startWebhookReceiver(secret = WEBHOOK_SECRET): Promise<WebhookReceiver> {
  const verifier = new Webhook(secret);
  const seen = new Map<string, number>();
  const okIds: string[] = [];
  const okSet = new Set<string>();
  const receiver: WebhookReceiver = {
    url: '',
    received: [],
    rejected: 0,
    deliveredIds: () => [...okIds],
    respond: () => 200,
    close: async () => undefined,
  };
  const server: Server = createServer((req, res) => {
    readBody(req)
      .then(async (payload) => {
        const headers = {
          'webhook-id': String(req.headers['webhook-id'] ?? ''),
          'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
          'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
        };
        let body: Record<string, any>;
        try {
          body = verifier.verify(payload, headers) as Record<string, any>;
        } catch {
          receiver.rejected++;
          res.writeHead(401).end();
          return;
        }
        const id = headers['webhook-id'];
        const nth = (seen.get(id) ?? 0) + 1;
        seen.set(id, nth);
        const status = await receiver.respond(id, body, nth);
        receiver.received.push({ id, body, at: Date.now(), status });
        if (status >= 200 && status < 300 && !okSet.has(id)) {
          okSet.add(id);
          okIds.push(id);
        }
        res.writeHead(status, { 'content-type': 'text/plain' }).end(String(status));
      })
      .catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  receiver.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return receiver;
}

/** Log lines captured as objects (the project's Logger). */
export function captureLogger() {
  const lines: { level: string; msg: string; fields: Record<string, unknown>; t: number }[] = [];
  const at = (level: string) => (msg: string, fields: Record<string, unknown> = {}) => void lines.push({ level, msg, fields, t: Date.now() });
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, text: () => JSON.stringify(lines) };
}
