import { randomBytes } from 'node:crypto';

/**
 * The change events of CONTRACT §9, one list. Each is written to the outbox in the
 * same transaction as the change it reports, and delivered as a webhook; the two
 * invite events are also emailed to the invitee.
 */
export const OUTBOX_EVENT_TYPES = [
  'invite.created',
  'invite.reissued',
  'invite.revoked',
  'invite.accepted',
  'member.role_changed',
  'member.removed',
  'member.left',
  'guest.added',
  'guest.removed',
  'token.created',
  'token.rotated',
  'token.deactivated',
  'project.deleted',
  'workspace.created',
  'ownership.transferred',
] as const;
export type OutboxEventType = (typeof OUTBOX_EVENT_TYPES)[number];

export function isOutboxEventType(value: unknown): value is OutboxEventType {
  return typeof value === 'string' && (OUTBOX_EVENT_TYPES as readonly string[]).includes(value);
}

/** The event types that send the invitee an email. */
export const EMAIL_EVENT_TYPES: readonly OutboxEventType[] = ['invite.created', 'invite.reissued'];

/** Delivery states of an outbox row. */
export const OUTBOX_STATUSES = ['pending', 'delivered', 'dead'] as const;
export type OutboxStatus = (typeof OUTBOX_STATUSES)[number];

/**
 * What `invite.created` / `invite.reissued` carry in `data` (what the email needs,
 * as of the change). No link here: the link travels in `secret`, encrypted.
 */
export interface InviteEventData {
  invite_id: string;
  email: string;
  role: string;
  /** ISO 8601 */
  expires_at: string;
  workspace_name: string;
  invited_by: { id: string; email?: string | undefined };
  /** Set for a project-guest invite. */
  project_id?: string | undefined;
  project_name?: string | undefined;
  [key: string]: unknown;
}

/** The secrets an event may carry: sealed in the row, opened only by the email channel. */
export interface OutboxSecret {
  accept_url: string;
}

type DataOf<T extends OutboxEventType> = T extends 'invite.created' | 'invite.reissued' ? InviteEventData : Record<string, unknown>;

/** An event to enqueue. `data` is what webhook receivers see: never put a secret in it. */
export type OutboxEventInput = {
  [T in OutboxEventType]: {
    type: T;
    workspaceId: string;
    /** `user:<id>` or `support:<name>`, as in the audit table. */
    actor: string;
    data: DataOf<T>;
    /** Only for the invite events: the acceptance link, stored encrypted. */
    secret?: T extends 'invite.created' | 'invite.reissued' ? OutboxSecret : never;
    /** Defaults to a new `evt_…` id. */
    id?: string;
  };
}[OutboxEventType];

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** A new event id: `evt_` + 22 base62 characters (random, as the other ids in the schema). */
export function newEventId(): string {
  const bytes = randomBytes(22);
  let out = '';
  for (const b of bytes) out += BASE62[b % 62];
  return `evt_${out}`;
}

export const EVENT_ID = /^evt_[0-9A-Za-z]{1,64}$/;
