import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { renderInviteEmail } from '../../src/outbox/email.ts';
import { OUTBOX_EVENT_TYPES, newEventId, EVENT_ID } from '../../src/outbox/events.ts';
import { redactError } from '../../src/outbox/store.ts';
import { isWebhookSecret } from '../../src/outbox/webhook.ts';

describe('outbox pieces', () => {
  it('the §9 event types, once each', () => {
    expect(OUTBOX_EVENT_TYPES).toHaveLength(15);
    expect(new Set(OUTBOX_EVENT_TYPES).size).toBe(15);
    expect(EVENT_ID.test(newEventId())).toBe(true);
    expect(newEventId()).not.toBe(newEventId());
  });

  it('redactError cuts out the link and its token, control characters and length', () => {
    const token = randomBytes(32).toString('base64url');
    const link = `https://app.example/invites?t=${token}&x=1`;
    expect(redactError(new Error(`550 rejected ${link}`), [link])).toBe('550 rejected [redacted]');
    expect(redactError(new Error(`bad token ${token}\r\nInjected: yes`), [link])).toBe('bad token [redacted] Injected: yes');
    expect(redactError(new TypeError('x'.repeat(900)))).toHaveLength(500);
    expect(redactError('plain')).toBe('plain');
  });

  it('invite email: names cannot break the subject line; HTML is escaped', () => {
    const mail = renderInviteEmail(
      'invite.created',
      { invite_id: 'i', email: 'e@example.com', role: 'admin', expires_at: '2026-12-16T10:00:00.000Z', workspace_name: 'Evil\r\nBcc: x@evil.test', invited_by: { id: 'u', email: '<script>@x' } },
      'http://gate.test/v1/invites/abc?x=1&y=2',
    );
    expect(mail.subject).toBe('<script>@x invited you to Evil Bcc: x@evil.test on Packagento');
    expect(mail.subject).not.toMatch(/[\r\n]/);
    expect(mail.html).toContain('&lt;script&gt;@x');
    expect(mail.html).toContain('href="http://gate.test/v1/invites/abc?x=1&amp;y=2"');
    expect(mail.text).toContain('http://gate.test/v1/invites/abc?x=1&y=2');
    expect(mail.text).toContain('as an admin');
  });

  it('webhook secrets: whsec_ and a base64 key of 24 to 64 bytes', () => {
    expect(isWebhookSecret('whsec_' + randomBytes(24).toString('base64'))).toBe(true);
    expect(isWebhookSecret('whsec_' + randomBytes(16).toString('base64'))).toBe(false);
    expect(isWebhookSecret('whsec_' + randomBytes(65).toString('base64'))).toBe(false);
    expect(isWebhookSecret(randomBytes(24).toString('base64'))).toBe(false);
    expect(isWebhookSecret('whsec_not base64!')).toBe(false);
  });
});
