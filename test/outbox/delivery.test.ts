import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createSecretBox } from '../../src/crypto/secret-box.ts';
import type { Db } from '../../src/db/client.ts';
import { createOutboxDeliverer } from '../../src/outbox/deliverer.ts';
import { createEmailChannel } from '../../src/outbox/email.ts';
import { EVENT_ID, type InviteEventData } from '../../src/outbox/events.ts';
import { enqueue, listEvents, openSecret, retryEvent, rowToEvent } from '../../src/outbox/store.ts';
import { createWebhookChannel } from '../../src/outbox/webhook.ts';
import {
  WEBHOOK_SECRET,
  captureLogger,
  startSmtpSink,
  startWebhookReceiver,
  tempDb,
  waitFor,
  type SmtpSink,
  type WebhookReceiver,
} from './helpers.ts';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const box = createSecretBox(randomBytes(32));
const LINK = `http://gate.test/v1/invites/${randomBytes(32).toString('base64url')}`;

function inviteData(over: Partial<InviteEventData> = {}): InviteEventData {
  return {
    invite_id: 'inv_1',
    email: 'erin@example.com',
    role: 'developer',
    expires_at: '2026-12-16T10:00:00.000Z',
    workspace_name: 'Acme <Tools>',
    invited_by: { id: 'alice', email: 'alice@example.com' },
    ...over,
  };
}

async function setup(opts: { smtp?: boolean; webhook?: boolean } = {}) {
  const { db, dir } = await tempDb();
  cleanups.push(() => db.close());
  let smtp: SmtpSink | undefined;
  let hook: WebhookReceiver | undefined;
  if (opts.smtp) {
    smtp = await startSmtpSink();
    cleanups.push(() => smtp!.close());
  }
  if (opts.webhook !== false) {
    hook = await startWebhookReceiver();
    cleanups.push(() => hook!.close());
  }
  return { db, dir, smtp, hook };
}

function deliverer(db: Db, o: { smtp?: SmtpSink | undefined; hook?: WebhookReceiver | undefined } & Partial<Parameters<typeof createOutboxDeliverer>[0]>) {
  const channels = [
    ...(o.smtp ? [createEmailChannel({ smtpUrl: o.smtp.url, from: 'Packagento <gate@packagento.test>', timeoutMs: 2000 })] : []),
    ...(o.hook ? [createWebhookChannel({ url: o.hook.url, secret: WEBHOOK_SECRET, timeoutMs: 2000 })] : []),
  ];
  const d = createOutboxDeliverer({ db, secretBox: box, channels, pollMs: 20, leaseMs: 1000, ...o });
  cleanups.push(() => d.stop());
  return d;
}

const statusOf = async (db: Db, id: string) =>
  String((await db.execute({ sql: 'SELECT status FROM outbox_events WHERE id = ?', args: [id] })).rows[0]?.['status']);

describe('outbox delivery', () => {
  it('an event enqueued in a committed transaction reaches the SMTP server and the webhook, link encrypted at rest', async () => {
    const { db, smtp, hook } = await setup({ smtp: true });
    const log = captureLogger();
    const d = deliverer(db, { smtp, hook, logger: log.logger });
    const id = await db.write((tx) =>
      enqueue(tx, { type: 'invite.created', workspaceId: 'ws_acme', actor: 'user:alice', data: inviteData(), secret: { accept_url: LINK } }, { secretBox: box }),
    );
    const guestId = await db.write((tx) =>
      enqueue(
        tx,
        { type: 'invite.created', workspaceId: 'ws_acme', actor: 'user:alice', data: inviteData({ invite_id: 'inv_2', email: 'gina@example.com', role: 'viewer', project_id: 'prj_web', project_name: 'Web shop' }), secret: { accept_url: LINK + 'g' } },
        { secretBox: box },
      ),
    );
    // The link is nowhere in the row in clear.
    const raw = (await db.execute({ sql: 'SELECT * FROM outbox_events WHERE id = ?', args: [id] })).rows[0]!;
    expect(JSON.stringify(raw)).not.toContain(LINK.split('/').pop());
    expect(Buffer.from(raw['secret'] as ArrayBuffer).toString('latin1')).not.toContain(LINK.split('/').pop());

    d.start();
    await waitFor(async () => (await statusOf(db, guestId)) === 'delivered', 10_000, 'delivery');
    expect(await statusOf(db, id)).toBe('delivered');

    expect(smtp!.mails).toHaveLength(2);
    const [mail, guest] = smtp!.mails;
    expect(smtp!.envelopes[0]).toEqual(['erin@example.com']);
    expect(mail!.subject).toBe('alice@example.com invited you to Acme <Tools> on Packagento');
    expect(mail!.from?.text).toContain('gate@packagento.test');
    expect(mail!.messageId).toBe(`<${id}@packagento.test>`);
    expect(mail!.text).toContain(LINK);
    expect(mail!.text).toContain('as a developer');
    expect(mail!.text).toContain('Wed, 16 Dec 2026 10:00:00 UTC');
    expect(mail!.html).toContain(`href="${LINK}"`);
    expect(mail!.html).toContain('Acme &lt;Tools&gt;');
    expect(guest!.subject).toContain('the project Web shop (Acme <Tools>)');
    expect(guest!.text).toContain('"Web shop"');
    expect(guest!.text).toContain('as a guest viewer');

    expect(hook!.rejected).toBe(0);
    expect(hook!.deliveredIds()).toEqual([id, guestId]);
    const body = hook!.received[0]!.body;
    expect(Object.keys(body).sort()).toEqual(['actor', 'data', 'id', 'time', 'type', 'workspace']);
    expect(body).toMatchObject({ type: 'invite.created', id, workspace: 'ws_acme', actor: 'user:alice', data: { email: 'erin@example.com', role: 'developer' } });
    expect(JSON.stringify(hook!.received)).not.toContain(LINK.split('/').pop());
    expect(log.text()).not.toContain(LINK.split('/').pop());
    expect(d.deliveries()).toEqual(
      expect.arrayContaining([
        { channel: 'email', result: 'delivered', count: 2 },
        { channel: 'webhook', result: 'delivered', count: 2 },
      ]),
    );
  });

  it('an event enqueued in a rolled-back transaction is never written nor sent', async () => {
    const { db, hook } = await setup();
    const d = deliverer(db, { hook });
    d.start();
    await expect(
      db.write(async (tx) => {
        await enqueue(tx, { type: 'member.removed', workspaceId: 'ws_acme', actor: 'user:alice', data: { user: 'dave' } });
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    // A committed event after it is delivered: the deliverer was running and looking.
    const later = await db.write((tx) => enqueue(tx, { type: 'member.left', workspaceId: 'ws_acme', actor: 'user:vic', data: {} }));
    await waitFor(() => hook!.deliveredIds().includes(later), 10_000, 'the committed event');
    expect(hook!.received.map((r) => r.body.type)).toEqual(['member.left']);
    expect((await listEvents(db)).map((e) => e.id)).toEqual([later]);
  });

  it('SMTP down: retried with exponential backoff, delivered once it is back', async () => {
    const { db, smtp } = await setup({ smtp: true, webhook: false });
    await smtp!.down();
    const log = captureLogger();
    const d = deliverer(db, { smtp, logger: log.logger, backoff: { baseMs: 40, capMs: 320 } });
    const id = await db.write((tx) =>
      enqueue(tx, { type: 'invite.reissued', workspaceId: 'ws_acme', actor: 'user:alice', data: inviteData(), secret: { accept_url: LINK } }, { secretBox: box }),
    );
    d.start();
    const failures = () => log.lines.filter((l) => l.msg.includes('will retry'));
    await waitFor(() => failures().length >= 4, 10_000, '4 failed tries');
    const row = rowToEvent((await db.execute({ sql: 'SELECT * FROM outbox_events WHERE id = ?', args: [id] })).rows[0] as any);
    expect(row.status).toBe('pending');
    expect(row.attempts).toBeGreaterThanOrEqual(4);
    expect(row.lastError).toMatch(/^email: SMTP ESOCKET: connect ECONNREFUSED/);
    expect(row.lastError).not.toContain(LINK.split('/').pop());
    await smtp!.up();
    await waitFor(async () => (await statusOf(db, id)) === 'delivered', 10_000, 'delivery after SMTP is back');
    expect(smtp!.mails).toHaveLength(1);
    expect(smtp!.mails[0]!.subject).toMatch(/^New link: /);
    expect(smtp!.mails[0]!.text).toContain('any earlier link no longer works');
    // The waits grew: 40, 80, 160 ms between tries (then 320, the cap), bounded by the 20 ms poll.
    const tries = failures();
    expect(tries.slice(0, 4).map((l) => l.fields['attempt'])).toEqual([1, 2, 3, 4]);
    const gaps = tries.slice(1, 4).map((l, i) => l.t - tries[i]!.t);
    // Measured between the failure lines, so a try that took long to fail (a loaded machine) shortens
    // the gap after it: up to 40 ms of slack, still far from a constant 40 ms wait.
    expect(gaps[0]).toBeGreaterThanOrEqual(40 - 40);
    expect(gaps[1]).toBeGreaterThanOrEqual(80 - 40);
    expect(gaps[2]).toBeGreaterThanOrEqual(160 - 40);
    expect(Math.max(...gaps)).toBeLessThan(2000);
    expect(log.text()).not.toContain(LINK.split('/').pop());
    expect(d.deliveries()).toEqual(expect.arrayContaining([{ channel: 'email', result: 'failed', count: row.attempts }]));
  });

  it('webhook answering 500 then 200: retried, delivered, the signature valid each time', async () => {
    const { db, hook } = await setup();
    hook!.respond = (_id, _body, nth) => (nth === 1 ? 500 : 200);
    const d = deliverer(db, { hook, backoff: { baseMs: 30, capMs: 100 } });
    const id = await db.write((tx) => enqueue(tx, { type: 'token.rotated', workspaceId: 'ws_acme', actor: 'user:dave', data: { token_id: 'tok_1' } }));
    d.start();
    await waitFor(async () => (await statusOf(db, id)) === 'delivered', 10_000, 'delivery');
    expect(hook!.received.map((r) => [r.id, r.status])).toEqual([[id, 500], [id, 200]]);
    expect(hook!.rejected).toBe(0);
    const row = (await listEvents(db))[0]!;
    expect(row.attempts).toBe(2);
    expect(row.lastError).toBeUndefined();
  });

  it('in order per workspace: a failing event holds back its workspace only', async () => {
    const { db, hook } = await setup();
    let blockA = true;
    const d = deliverer(db, { hook, backoff: { baseMs: 20, capMs: 40 } });
    const ids: Record<string, string[]> = { a: [], b: [] };
    for (let i = 0; i < 5; i++) {
      for (const ws of ['a', 'b']) {
        ids[ws]!.push(await db.write((tx) => enqueue(tx, { type: 'token.created', workspaceId: `ws_${ws}`, actor: 'user:x', data: { n: i } })));
      }
    }
    hook!.respond = (id) => (blockA && id === ids['a']![0] ? 503 : 200);
    d.start();
    await waitFor(() => ids['b']!.every((id) => hook!.deliveredIds().includes(id)), 10_000, 'workspace b');
    // Workspace a's later events waited behind its first.
    expect(hook!.received.filter((r) => r.body.workspace === 'ws_a').map((r) => r.id).every((id) => id === ids['a']![0])).toBe(true);
    blockA = false;
    await waitFor(() => ids['a']!.every((id) => hook!.deliveredIds().includes(id)), 10_000, 'workspace a');
    const order = hook!.deliveredIds();
    expect(order.filter((id) => ids['a']!.includes(id))).toEqual(ids['a']);
    expect(order.filter((id) => ids['b']!.includes(id))).toEqual(ids['b']);
  });

  it('dead after 24 h of failures (clock injected); later events of the workspace proceed; retry revives it', async () => {
    const { db, hook } = await setup();
    let clock = Date.UTC(2026, 0, 1);
    let failing = true;
    hook!.respond = (_id, body) => (failing && body.type === 'member.removed' ? 500 : 200);
    const log = captureLogger();
    const d = deliverer(db, { hook, now: () => clock, logger: log.logger });
    const id = await db.write((tx) => enqueue(tx, { type: 'member.removed', workspaceId: 'ws_acme', actor: 'user:alice', data: { user: 'dave' } }, { now: clock }));
    const after = await db.write((tx) => enqueue(tx, { type: 'member.left', workspaceId: 'ws_acme', actor: 'user:vic', data: {} }, { now: clock }));
    d.start();
    // Walk the clock through the backoff: 1 s, 2 s, 4 s, … capped at 1 h, until 24 h have passed.
    const rowOf = async () => (await listEvents(db)).find((e) => e.id === id)!;
    const gaps: number[] = [];
    for (let i = 1; i <= 80; i++) {
      await waitFor(async () => {
        const r = await rowOf();
        return r.attempts >= i || r.status !== 'pending';
      }, 5000, `try ${i}`);
      const row = await rowOf();
      if (row.status !== 'pending') break;
      gaps.push(row.nextAttemptAt - clock);
      clock = row.nextAttemptAt;
    }
    expect(await statusOf(db, id)).toBe('dead');
    expect(gaps.slice(0, 5)).toEqual([1000, 2000, 4000, 8000, 16_000]);
    expect(Math.max(...gaps)).toBe(3_600_000);
    expect(clock - Date.UTC(2026, 0, 1)).toBe(24 * 3_600_000);
    expect(log.lines.some((l) => l.level === 'error' && l.fields['event_id'] === id)).toBe(true);
    expect(d.deliveries()).toEqual(expect.arrayContaining([{ channel: 'webhook', result: 'dead', count: 1 }]));
    // The dead event no longer holds its workspace back.
    await waitFor(() => hook!.deliveredIds().includes(after), 5000, 'the later event');
    // An operator retries it once the receiver is fixed.
    failing = false;
    expect(await retryEvent(db, id, clock)).toEqual({ ok: true, previous: 'dead' });
    await waitFor(async () => (await statusOf(db, id)) === 'delivered', 5000, 'the retried event');
    expect(await retryEvent(db, id, clock)).toEqual({ ok: false, reason: 'delivered' });
  });

  it('stop() ends the loop promptly (after its grace), even with a receiver that never answers', async () => {
    const { db, hook } = await setup();
    hook!.respond = () => new Promise<number>(() => undefined);
    const d = deliverer(db, { hook, stopGraceMs: 200 });
    await db.write((tx) => enqueue(tx, { type: 'project.deleted', workspaceId: 'ws_acme', actor: 'user:alice', data: {} }));
    d.start();
    await waitFor(() => d.holdsLease, 5000, 'the lease');
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await d.stop();
    expect(Date.now() - t0).toBeLessThan(1000);
    const [row] = await listEvents(db);
    // The interrupted try is not counted as a failure.
    expect(row).toMatchObject({ status: 'pending', attempts: 0 });
    const lease = (await db.execute('SELECT expires_at FROM outbox_lease')).rows[0]!;
    expect(Number(lease['expires_at'])).toBe(0);
  });

  it('the sealed link opens only for its own row', async () => {
    const { db } = await tempDb();
    try {
      const box = createSecretBox(randomBytes(32));
      const secret = { accept_url: 'http://gate.test/v1/invites/' + randomBytes(32).toString('base64url') };
      const data = { invite_id: 'inv_1', email: 'e@example.com', role: 'viewer', expires_at: new Date().toISOString(), workspace_name: 'W', invited_by: { id: 'a' } };
      const a = await db.write((tx) => enqueue(tx, { type: 'invite.created', workspaceId: 'ws', actor: 'user:a', data, secret }, { secretBox: box }));
      const b = await db.write((tx) => enqueue(tx, { type: 'invite.created', workspaceId: 'ws', actor: 'user:a', data, secret: { accept_url: 'other' } }, { secretBox: box }));
      await expect(db.write((tx) => enqueue(tx, { type: 'invite.created', workspaceId: 'ws', actor: 'user:a', data, secret }))).rejects.toThrow(/no secret box/);
      const rows = (await db.execute('SELECT * FROM outbox_events ORDER BY seq')).rows.map((r) => rowToEvent(r as any));
      expect(openSecret(rows[0]!, box)).toEqual(secret);
      // A ciphertext moved onto another row does not open.
      const moved = { ...rows[1]!, sealedSecret: rows[0]!.sealedSecret };
      expect(() => openSecret(moved, box)).toThrow();
      expect(() => openSecret(rows[0]!, createSecretBox(randomBytes(32)))).toThrow(/no key/);
      expect([a, b].every((id) => EVENT_ID.test(id))).toBe(true);
    } finally {
      db.close();
    }
  });

  it('an unreadable database: the loop keeps going quietly, and stop() still ends it', async () => {
    const { db: closed } = await tempDb();
    closed.close();
    const log = captureLogger();
    const d = createOutboxDeliverer({ db: closed, channels: [], pollMs: 10, leaseMs: 100, logger: log.logger });
    d.start();
    await new Promise((r) => setTimeout(r, 400));
    const warnings = log.lines.filter((l) => l.msg === 'outbox: delivery pass failed');
    // Backing off: far fewer looks (and log lines) than one per 10 ms poll.
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings.length).toBeLessThanOrEqual(2);
    const t0 = Date.now();
    await d.stop();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(d.holdsLease).toBe(false);
  });
});
