import type { OutboxChannel } from './channel.ts';
import { createEmailChannel } from './email.ts';
import { createWebhookChannel } from './webhook.ts';

export interface OutboxChannelSettings {
  /** GATE_SMTP_URL */
  smtpUrl?: string | undefined;
  /** GATE_MAIL_FROM */
  mailFrom?: string | undefined;
  /** GATE_WEBHOOK_URL */
  webhookUrl?: string | undefined;
  /** GATE_WEBHOOK_SECRET */
  webhookSecret?: string | undefined;
  timeoutMs?: number | undefined;
}

/**
 * The channels the configuration turns on: email when GATE_SMTP_URL is set, webhooks
 * when GATE_WEBHOOK_URL is. With neither, events are still written (the outbox is the
 * record of what changed) and marked delivered, having nowhere to go.
 * Every gateway sharing a database should be configured alike: whichever holds the
 * lease decides where events go.
 */
export function createOutboxChannels(settings: OutboxChannelSettings): OutboxChannel[] {
  const channels: OutboxChannel[] = [];
  if (settings.smtpUrl) {
    if (!settings.mailFrom) throw new Error('GATE_MAIL_FROM is required with GATE_SMTP_URL');
    channels.push(createEmailChannel({ smtpUrl: settings.smtpUrl, from: settings.mailFrom, timeoutMs: settings.timeoutMs }));
  }
  if (settings.webhookUrl) {
    if (!settings.webhookSecret) throw new Error('GATE_WEBHOOK_SECRET is required with GATE_WEBHOOK_URL');
    channels.push(createWebhookChannel({ url: settings.webhookUrl, secret: settings.webhookSecret, timeoutMs: settings.timeoutMs }));
  }
  return channels;
}
