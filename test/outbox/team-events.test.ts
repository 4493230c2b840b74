import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUTBOX_EVENT_TYPES } from '../../src/outbox/events.ts';
import { listEvents } from '../../src/outbox/store.ts';
import { transferOwnership } from '../../src/team/ownership-transfer.ts';
import { call, linkToken } from '../helpers/api.ts';
import { ACME, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { WEBHOOK_SECRET, startSmtpSink, startWebhookReceiver, waitFor, type SmtpSink, type WebhookReceiver } from './helpers.ts';

let t: TestGateway;
let smtp: SmtpSink;
let hook: WebhookReceiver;
const api = (method: string, path: string, opts: Parameters<typeof call>[3] = {}) => call(t.gw.url, method, path, opts);
/** Every secret the API handed out during the run: none may appear in an event, an email header, or a log. */
const secrets: string[] = [];

beforeAll(async () => {
  smtp = await startSmtpSink();
  hook = await startWebhookReceiver();
  t = await startTestGateway({
    world: ACME,
    env: {
      GATE_SMTP_URL: smtp.url,
      GATE_MAIL_FROM: 'Packagento <noreply@packagento.test>',
      GATE_WEBHOOK_URL: hook.url,
      GATE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    },
    outbox: { pollMs: 20, backoff: { baseMs: 20, capMs: 100 } },
  });
  for (const tok of t.seeded.tokens.values()) secrets.push(tok.privateKey);
});
afterAll(async () => {
  await t?.close();
  await hook?.close();
  await smtp?.close();
});

const typesSeen = () => hook.received.map((r) => r.body.type as string);
const eventsOf = (type: string) => hook.received.filter((r) => r.body.type === type).map((r) => r.body);
const waitForType = (type: string, n = 1) => waitFor(() => eventsOf(type).length >= n, 10_000, `${n} × ${type}`);

describe('team changes reach email and webhooks through the outbox', () => {
  it('an invite sent through the API lands in a real SMTP server with a working link', async () => {
    const inv = await api('POST', '/v1/workspaces/acme/invites', { as: 'alice', body: { email: 'erin@example.com', role: 'developer' } });
    expect(inv.status).toBe(201);
    secrets.push(linkToken(inv.body.accept_url));
    await waitFor(() => smtp.mails.length >= 1, 10_000, 'the invite email');
    const mail = smtp.mails[0]!;
    expect(smtp.envelopes[0]).toEqual(['erin@example.com']);
    expect(mail.subject).toBe('alice@example.com invited you to acme on Packagento');
    expect(mail.text).toContain(inv.body.accept_url);
    expect(mail.html).toContain(`href="${inv.body.accept_url}"`);
    expect(mail.text).toContain('as a developer');
    expect(mail.text).toContain(new Date(inv.body.invite.expires_at).toUTCString().replace('GMT', 'UTC'));
    // The link in the email works: erin accepts with it.
    const link = /http\S+\/v1\/invites\/([A-Za-z0-9_-]{43})/.exec(mail.text!)![1]!;
    const accepted = await api('POST', `/v1/invites/${link}/accept`, { as: 'erin' });
    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({ workspace_id: 'acme', role: 'developer' });
    await waitForType('invite.accepted');
    expect(eventsOf('invite.created')[0]).toMatchObject({ workspace: 'acme', actor: 'user:alice', data: { email: 'erin@example.com', role: 'developer', workspace_name: 'acme' } });
    expect(eventsOf('invite.accepted')[0]).toMatchObject({ actor: 'user:erin', data: { user_id: 'erin', role: 'developer' } });
  });

  it('a guest invite email names the project; a re-issue sends a new working link and kills the old', async () => {
    const inv = await api('POST', '/v1/workspaces/acme/projects/web/guests', { as: 'bob', body: { email: 'gail@example.com', role: 'viewer' } });
    expect(inv.status).toBe(201);
    secrets.push(linkToken(inv.body.accept_url));
    const re = await api('POST', `/v1/workspaces/acme/invites/${inv.body.invite.id}/reissue`, { as: 'bob' });
    expect(re.status).toBe(200);
    secrets.push(linkToken(re.body.accept_url));
    await waitFor(() => smtp.mails.length >= 3, 10_000, 'both guest emails');
    const [first, second] = smtp.mails.slice(1);
    expect(first!.subject).toBe('bob@example.com invited you to the project web (acme) on Packagento');
    expect(first!.text).toContain('as a guest viewer');
    expect(first!.text).toContain(inv.body.accept_url);
    expect(second!.subject).toMatch(/^New link: /);
    expect(second!.text).toContain(re.body.accept_url);
    expect(second!.text).not.toContain(inv.body.accept_url);
    expect((await api('POST', `/v1/invites/${linkToken(inv.body.accept_url)}/accept`, { as: 'gail' })).status).toBe(410);
    expect((await api('POST', `/v1/invites/${linkToken(re.body.accept_url)}/accept`, { as: 'gail' })).status).toBe(200);
    await waitForType('guest.added');
    expect(eventsOf('guest.added')[0]).toMatchObject({ data: { project_id: 'web', user_id: 'gail', role: 'viewer' } });
  });

  it('every §9 change emits its event, signed; refused changes emit nothing', async () => {
    const before = (await listEvents(t.gw.db, { limit: 10_000 })).length;
    // Refused: rank rule, duplicate invite, a viewer minting — no event rows.
    expect((await api('POST', '/v1/workspaces/acme/invites', { as: 'bob', body: { email: 'o@example.com', role: 'owner' } })).status).toBe(403);
    const dup = await api('POST', '/v1/workspaces/acme/invites', { as: 'alice', body: { email: 'zed@example.com', role: 'viewer' } });
    expect(dup.status).toBe(201);
    secrets.push(linkToken(dup.body.accept_url));
    expect((await api('POST', '/v1/workspaces/acme/invites', { as: 'alice', body: { email: 'zed@example.com', role: 'viewer' } })).status).toBe(409);
    expect((await api('POST', '/v1/workspaces/acme/projects/web/tokens', { as: 'vic', body: { name: 'x' } })).status).toBe(403);
    expect((await listEvents(t.gw.db, { limit: 10_000 })).length).toBe(before + 1);

    expect((await api('DELETE', `/v1/workspaces/acme/invites/${dup.body.invite.id}`, { as: 'alice' })).status).toBe(200);
    const minted = await api('POST', '/v1/workspaces/acme/projects/web/tokens', { as: 'dave', body: { name: 'ci' } });
    expect(minted.status).toBe(201);
    secrets.push(minted.body.token.private_key);
    const rotated = await api('POST', `/v1/workspaces/acme/projects/web/tokens/${minted.body.token.id}/rotate`, { as: 'dave' });
    expect(rotated.status).toBe(200);
    secrets.push(rotated.body.token.private_key);
    expect((await api('DELETE', `/v1/workspaces/acme/projects/web/tokens/${rotated.body.token.id}`, { as: 'dave' })).status).toBe(200);
    // dave (developer → viewer) loses the tokens he minted: role_changed + token.deactivated for t1.
    expect((await api('PATCH', '/v1/workspaces/acme/members/dave', { as: 'alice', body: { role: 'viewer' } })).status).toBe(200);
    expect((await api('DELETE', '/v1/workspaces/acme/members/bill', { as: 'bob' })).status).toBe(200);
    expect((await api('DELETE', '/v1/workspaces/acme/members/me', { as: 'vic' })).status).toBe(200);
    expect((await api('DELETE', '/v1/workspaces/acme/projects/web/guests/gus', { as: 'bob' })).status).toBe(200);
    expect((await api('DELETE', '/v1/workspaces/acme/projects/api', { as: 'alice' })).status).toBe(200);
    expect((await api('POST', '/v1/workspaces', { as: 'erin', body: { name: 'Erin Co' } })).status).toBe(201);
    const moved = await transferOwnership(t.gw.db, { workspaceId: 'acme', toUserId: 'bob', previousOwnersBecome: 'admin', actor: 'sam', reason: 'ticket 42', now: Date.now() });
    expect(moved.ok).toBe(true);

    await waitFor(() => OUTBOX_EVENT_TYPES.every((type) => typesSeen().includes(type)), 10_000, 'one of every event type');
    await waitFor(async () => (await listEvents(t.gw.db, { status: 'pending' })).length === 0, 10_000, 'an empty outbox');
    expect(hook.rejected).toBe(0);
    expect(eventsOf('member.role_changed')[0]).toMatchObject({ workspace: 'acme', actor: 'user:alice', data: { user_id: 'dave', from: 'developer', to: 'viewer', deactivated_tokens: ['t1'] } });
    expect(eventsOf('token.deactivated').map((e) => [e.data.token_id, e.data.reason])).toEqual(
      expect.arrayContaining([[rotated.body.token.id, 'revoked'], ['t1', 'member_demoted'], ['t2', 'project_deleted']]),
    );
    expect(eventsOf('member.removed')[0]).toMatchObject({ actor: 'user:bob', data: { user_id: 'bill', role: 'billing' } });
    expect(eventsOf('member.left')[0]).toMatchObject({ actor: 'user:vic', data: { user_id: 'vic' } });
    expect(eventsOf('guest.removed')[0]).toMatchObject({ data: { project_id: 'web', user_id: 'gus' } });
    expect(eventsOf('project.deleted')[0]).toMatchObject({ data: { project_id: 'api', deactivated_tokens: ['t2'] } });
    expect(eventsOf('workspace.created')[0]).toMatchObject({ actor: 'user:erin', data: { name: 'Erin Co', personal: false } });
    expect(eventsOf('ownership.transferred')[0]).toMatchObject({ workspace: 'acme', actor: 'support:sam', data: { to: 'bob', from: ['alice'] } });
    expect(eventsOf('token.rotated')[0]).toMatchObject({ data: { token_id: minted.body.token.id, replaced_by: rotated.body.token.id } });
    // In order per workspace: acme's events arrived in the order they were written.
    const rows = (await listEvents(t.gw.db, { limit: 10_000 })).reverse();
    const acmeOrder = rows.filter((r) => r.workspaceId === 'acme').map((r) => r.id);
    expect(hook.deliveredIds().filter((id) => acmeOrder.includes(id))).toEqual(acmeOrder);
    // Idempotent receivers: webhook-id is the body's id, unique per event.
    expect(hook.received.every((r) => r.id === r.body.id)).toBe(true);
  });

  it('no secret in any event, webhook, email header or log line', async () => {
    expect(secrets.length).toBeGreaterThan(5);
    const rows = await t.gw.db.execute('SELECT id, type, workspace_id, actor, data, last_error FROM outbox_events');
    const stored = JSON.stringify(rows.rows);
    const webhooks = JSON.stringify(hook.received);
    const logs = t.logs.join('\n');
    const headers = JSON.stringify(smtp.mails.map((m) => [m.subject, m.headerLines]));
    for (const s of secrets) {
      expect(stored).not.toContain(s);
      expect(webhooks).not.toContain(s);
      expect(logs).not.toContain(s);
      expect(headers).not.toContain(s);
    }
  });
});
