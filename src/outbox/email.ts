import { createTransport } from 'nodemailer';
import { z } from 'zod';
import type { DeliverableEvent, OutboxChannel } from './channel.ts';
import { EMAIL_EVENT_TYPES, type OutboxEventType } from './events.ts';

export interface EmailChannelOptions {
  /** `smtp://` or `smtps://` (user:password@host:port). */
  smtpUrl: string;
  /** The sender address (`GATE_MAIL_FROM`). */
  from: string;
  /** Connect, greeting and socket-idle timeouts, and the bound on one whole send (default 15 s). */
  timeoutMs?: number;
}

const inviteData = z.object({
  invite_id: z.string(),
  email: z.string().min(3),
  role: z.string(),
  expires_at: z.string(),
  workspace_name: z.string(),
  invited_by: z.object({ id: z.string(), email: z.string().optional().nullable() }),
  project_id: z.string().optional().nullable(),
  project_name: z.string().optional().nullable(),
});
type InviteData = z.infer<typeof inviteData>;

export interface InviteEmail {
  to: string;
  subject: string;
  text: string;
  html: string;
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** Header-safe one-liner (names come from users: no line breaks into the subject). */
const oneLine = (s: string) => s.replace(/[\r\n\t\u0000-\u001f\u007f]+/g, ' ').trim();

function expiryText(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toUTCString().replace('GMT', 'UTC');
}

/** The invitee's email for `invite.created` / `invite.reissued` (plain text and HTML). */
export function renderInviteEmail(type: OutboxEventType, data: InviteData, link: string): InviteEmail {
  const workspace = oneLine(data.workspace_name);
  const inviter = oneLine(data.invited_by.email ?? data.invited_by.id);
  const project = data.project_id ? oneLine(data.project_name ?? data.project_id) : undefined;
  const reissued = type === 'invite.reissued';
  const where = project ? `the project "${project}" in the workspace "${workspace}"` : `the workspace "${workspace}"`;
  const what = project ? `a guest ${data.role}` : `${/^[aeiou]/i.test(data.role) ? 'an' : 'a'} ${data.role}`;
  const subject = project
    ? `${reissued ? 'New link: ' : ''}${inviter} invited you to the project ${project} (${workspace}) on Packagento`
    : `${reissued ? 'New link: ' : ''}${inviter} invited you to ${workspace} on Packagento`;
  const expires = expiryText(data.expires_at);
  const lines = [
    `${inviter} invited you to join ${where} on Packagento as ${what}.`,
    ...(reissued ? ['', 'This is a new link for your invite; any earlier link no longer works.'] : []),
    '',
    'Accept the invite:',
    link,
    '',
    `The link works once and expires on ${expires}.`,
    'Sign in (or create an account) with this email address to accept it.',
    '',
    'If you did not expect this invite, you can ignore this email.',
  ];
  const html = `<!doctype html>
<html><body style="font-family: sans-serif; line-height: 1.5">
<p>${escapeHtml(inviter)} invited you to join ${project ? `the project <strong>${escapeHtml(project)}</strong> in the workspace <strong>${escapeHtml(workspace)}</strong>` : `the workspace <strong>${escapeHtml(workspace)}</strong>`} on Packagento as ${escapeHtml(what)}.</p>
${reissued ? '<p>This is a new link for your invite; any earlier link no longer works.</p>\n' : ''}<p><a href="${escapeHtml(link)}">Accept the invite</a></p>
<p>Or paste this link into your browser:<br><code>${escapeHtml(link)}</code></p>
<p>The link works once and expires on ${escapeHtml(expires)}. Sign in (or create an account) with this email address to accept it.</p>
<p style="color: #666">If you did not expect this invite, you can ignore this email.</p>
</body></html>
`;
  return { to: data.email, subject, text: lines.join('\n') + '\n', html };
}

/**
 * Invite emails over SMTP (nodemailer, one connection per message). The Message-ID
 * is derived from the event id, so a redelivered email is recognisable as the same one.
 */
export function createEmailChannel(options: EmailChannelOptions): OutboxChannel {
  const url = new URL(options.smtpUrl);
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') throw new Error('the SMTP URL must be smtp:// or smtps://');
  const timeoutMs = options.timeoutMs ?? 15_000;
  const transport = createTransport({
    url: options.smtpUrl,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    socketCloseTimeout: 1000,
    // nodemailer would otherwise log message contents (the link) at debug.
    logger: false,
    debug: false,
  });
  const domain = (options.from.match(/@([^>\s]+)>?\s*$/)?.[1] ?? 'packagento-gate').toLowerCase();
  return {
    name: 'email',
    accepts: (type) => EMAIL_EVENT_TYPES.includes(type),
    async deliver(event: DeliverableEvent, signal: AbortSignal) {
      const parsed = inviteData.safeParse(event.data);
      if (!parsed.success) throw new Error(`the ${event.type} event lacks what the email needs`);
      const secret = event.secret();
      if (!secret?.accept_url) throw new Error(`the ${event.type} event carries no invite link`);
      const mail = renderInviteEmail(event.type, parsed.data, secret.accept_url);
      try {
        await transport.sendMail({
          from: options.from,
          to: mail.to,
          subject: mail.subject,
          text: mail.text,
          html: mail.html,
          messageId: `<${event.id}@${domain}>`,
          headers: { 'X-Packagento-Event': event.type },
          signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
        });
      } catch (err) {
        // nodemailer's messages name the SMTP step and the server's answer, not the body.
        const e = err as { code?: string; responseCode?: number; message?: string; name?: string };
        if (e.name === 'AbortError' || e.code === 'EABORT') throw new Error(signal.aborted ? 'aborted' : `SMTP send took over ${timeoutMs} ms`);
        throw new Error(`SMTP ${[e.code, e.responseCode].filter(Boolean).join(' ')}: ${e.message ?? 'send failed'}`);
      }
    },
    close() {
      transport.close();
    },
  };
}
