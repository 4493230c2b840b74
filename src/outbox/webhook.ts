import { Webhook } from 'standardwebhooks';
import { webhookPayload, type DeliverableEvent, type OutboxChannel } from './channel.ts';

export interface WebhookChannelOptions {
  url: string;
  /** `whsec_` + base64 key (Standard Webhooks). */
  secret: string;
  /** Per request, connect to last byte (default 10 s). */
  timeoutMs?: number;
  /** The signature timestamp; the real clock by default (receivers reject stale timestamps). */
  wallClock?: () => number;
}

const WHSEC = /^whsec_[A-Za-z0-9+/]+={0,2}$/;

/** Is this a usable Standard Webhooks secret? (config validation) */
export function isWebhookSecret(value: string): boolean {
  if (!WHSEC.test(value)) return false;
  const n = Buffer.from(value.slice('whsec_'.length), 'base64').length;
  return n >= 24 && n <= 64;
}

/**
 * Every event as a signed POST (https://www.standardwebhooks.com/): `webhook-id` is
 * the event id (receivers dedup on it), `webhook-timestamp` the send time in
 * seconds, `webhook-signature` `v1,<base64 HMAC-SHA256>` of `id.timestamp.body`.
 * A 2xx answer is a delivery; anything else, a redirect included (never followed),
 * a timeout or a network error is a failure to retry.
 */
export function createWebhookChannel(options: WebhookChannelOptions): OutboxChannel {
  if (!isWebhookSecret(options.secret)) throw new Error('the webhook secret must be whsec_ followed by 24 to 64 base64-encoded bytes');
  const url = new URL(options.url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('the webhook URL must be http(s)');
  const signer = new Webhook(options.secret);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const wallClock = options.wallClock ?? Date.now;
  return {
    name: 'webhook',
    accepts: () => true,
    async deliver(event: DeliverableEvent, signal: AbortSignal) {
      const body = JSON.stringify(webhookPayload(event));
      const at = new Date(wallClock());
      const signature = signer.sign(event.id, at, body);
      let res: Response;
      try {
        res = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'packagento-gate-outbox',
          'webhook-id': event.id,
          'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
          'webhook-signature': signature,
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
        });
      } catch (err) {
        throw new Error(`the webhook request failed: ${describeFetchError(err, timeoutMs)}`);
      }
      // Read (and drop) the answer so the connection can be reused; bounded by the same signal.
      await res.arrayBuffer().catch(() => undefined);
      if (res.status < 200 || res.status > 299) throw new Error(`the webhook answered ${res.status}`);
    },
  };
}

/** A fetch failure in a few words (the URL is left out: it may carry a token). */
function describeFetchError(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  if (e.name === 'AbortError') return 'aborted';
  return e.cause?.code ?? e.cause?.message ?? e.message ?? 'unknown error';
}
