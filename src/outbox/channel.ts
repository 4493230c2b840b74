import type { OutboxEventType, OutboxSecret } from './events.ts';

export const CHANNEL_NAMES = ['email', 'webhook'] as const;
export type ChannelName = (typeof CHANNEL_NAMES)[number];

/** One event as a channel sees it. The secret is opened only when a channel asks for it. */
export interface DeliverableEvent {
  id: string;
  type: OutboxEventType;
  workspaceId: string;
  actor: string;
  data: Record<string, unknown>;
  /** When the change happened (unix ms). */
  createdAt: number;
  /** Decrypts the event's secrets (the invite link); undefined when it has none. */
  secret(): OutboxSecret | undefined;
}

/**
 * A way out for events. `deliver` resolves once the other side took the event and
 * throws otherwise (its message is redacted and stored as `last_error`); it must
 * give up within its own timeout and when `signal` aborts (the deliverer stopping).
 */
export interface OutboxChannel {
  readonly name: ChannelName;
  accepts(type: OutboxEventType): boolean;
  deliver(event: DeliverableEvent, signal: AbortSignal): Promise<void>;
  close?(): void | Promise<void>;
}

/** The webhook body (CONTRACT §9): `{type, id, time, workspace, actor, data}`. */
export function webhookPayload(event: DeliverableEvent) {
  return {
    type: event.type,
    id: event.id,
    time: new Date(event.createdAt).toISOString(),
    workspace: event.workspaceId,
    actor: event.actor,
    data: event.data,
  };
}
