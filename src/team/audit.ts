import { problem } from '../http/problem.ts';
import { fail, iso, json, respond } from './common.ts';
import { defineNative, type NativeDeps, type NativeHandlers } from './types.ts';

export const AUDIT_PAGE_DEFAULT = 50;
export const AUDIT_PAGE_MAX = 200;

/** Cursors are opaque to clients: the id of the last event of the previous page, base64url. */
export const encodeAuditCursor = (id: number) => Buffer.from(`before:${id}`, 'utf8').toString('base64url');

export function decodeAuditCursor(cursor: string): number | undefined {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(cursor)) return undefined;
  const m = /^before:([1-9][0-9]{0,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return m ? Number(m[1]) : undefined;
}

function parseDetail(raw: unknown): unknown {
  if (raw === null || raw === undefined) return null;
  try {
    return JSON.parse(String(raw));
  } catch {
    return null;
  }
}

/**
 * The workspace's audit trail (`audit:list`, owners and admins by default), newest
 * first, in pages. Rows hold no secrets: the audit writers record ids, emails and
 * roles, never links or keys.
 */
export function auditHandlers(deps: NativeDeps): NativeHandlers {
  const { db } = deps;
  return {
    'GET /v1/workspaces/{ws}/audit': defineNative({
      async handle(ctx) {
        const ws = ctx.param('ws');
        const query = new URL(ctx.c.req.url).searchParams;
        const rawLimit = query.get('limit');
        const limit = rawLimit === null || rawLimit === '' ? AUDIT_PAGE_DEFAULT : /^[0-9]{1,4}$/.test(rawLimit) ? Number(rawLimit) : NaN;
        if (!(limit >= 1 && limit <= AUDIT_PAGE_MAX)) {
          return respond(ctx, fail(problem('bad_request', `limit must be a whole number from 1 to ${AUDIT_PAGE_MAX}`)));
        }
        const rawCursor = query.get('cursor');
        let before: number | undefined;
        if (rawCursor !== null && rawCursor !== '') {
          before = decodeAuditCursor(rawCursor);
          if (before === undefined) return respond(ctx, fail(problem('bad_request', 'cursor is not one this API returned')));
        }
        const r = await db.execute({
          sql: `SELECT id, at, actor, action, target, detail, request_id FROM audit_events
                WHERE workspace_id = ? AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?`,
          args: [ws, before ?? null, before ?? null, limit + 1],
        });
        const rows = r.rows.slice(0, limit);
        const more = r.rows.length > limit;
        return json(200, {
          events: rows.map((row) => ({
            id: Number(row['id']),
            time: iso(Number(row['at'])),
            actor: String(row['actor']),
            action: String(row['action']),
            target: row['target'] === null ? null : String(row['target']),
            detail: parseDetail(row['detail']),
            request_id: row['request_id'] === null ? null : String(row['request_id']),
          })),
          next_cursor: more ? encodeAuditCursor(Number(rows[rows.length - 1]!['id'])) : null,
        });
      },
    }),
  };
}
