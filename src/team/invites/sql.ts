import { randomBytes } from 'node:crypto';
import type { Transaction } from '@libsql/client';
import { sha256 } from '../../crypto/hash.ts';

/** The invite tables' SQL: rows in, rows out, no rules. */

export type Reader = { execute: Transaction['execute'] };

/** Invite link tokens: 256 random bits, base64url (43 characters). Only a hash is stored. */
const LINK_TOKEN = /^[A-Za-z0-9_-]{43}$/;

export interface InviteRow {
  id: string;
  workspace_id: string;
  project_id: string | null;
  email: string;
  role: string;
  status: string;
  invited_by: string;
  created_at: number;
  expires_at: number;
  accepted_by: string | null;
  accepted_at: number | null;
  revoked_at: number | null;
}

/** Replaces the invite's current link with a new one; the old link answers 410 from now on. */
export async function newLink(tx: Transaction, inviteId: string, at: number): Promise<string> {
  await tx.execute({ sql: 'UPDATE invite_links SET replaced_at = ? WHERE invite_id = ? AND replaced_at IS NULL', args: [at, inviteId] });
  const token = randomBytes(32).toString('base64url');
  await tx.execute({ sql: 'INSERT INTO invite_links (token_hash, invite_id, created_at) VALUES (?, ?, ?)', args: [sha256(token), inviteId, at] });
  return token;
}

export async function inviteById(tx: Reader, ws: string, id: string): Promise<InviteRow | undefined> {
  const r = await tx.execute({ sql: 'SELECT * FROM invites WHERE workspace_id = ? AND id = ?', args: [ws, id] });
  return r.rows[0] as unknown as InviteRow | undefined;
}

export type LinkLookup = { invite: InviteRow; replaced: boolean } | undefined;

export async function inviteByLink(tx: Reader, token: string): Promise<LinkLookup> {
  if (!LINK_TOKEN.test(token)) return undefined;
  const r = await tx.execute({
    sql: `SELECT i.*, l.replaced_at AS link_replaced_at FROM invite_links l JOIN invites i ON i.id = l.invite_id WHERE l.token_hash = ?`,
    args: [sha256(token)],
  });
  const row = r.rows[0];
  if (!row) return undefined;
  return { invite: row as unknown as InviteRow, replaced: row['link_replaced_at'] !== null };
}

