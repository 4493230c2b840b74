import { z } from 'zod';
import type { Transaction } from '@libsql/client';
import { defineNative, type NativeContext, type NativeDeps, type NativeHandlers } from './types.ts';
import { generatePrivateKey, generatePublicKey } from '../authn/keys.ts';
import { sha256 } from '../crypto/hash.ts';
import { problem } from '../http/problem.ts';
import { newId } from '../crypto/ids.ts';
import { audit } from '../db/audit.ts';
import { fail, iso, json, ok, reauthorize, respond, userOf, type Result } from './common.ts';

const tokenName = z.string().trim().min(1, 'must not be empty').max(100, 'at most 100 characters');
const createTokenBody = z.strictObject({ name: tokenName });

interface TokenRow {
  id: string;
  workspace_id: string;
  project_id: string;
  name: string;
  public_key: string;
  secret_ciphertext: ArrayBuffer;
  key_id: string;
  minted_by: string;
  minted_as: string;
  active: number;
  created_at: number;
  deactivated_at: number | null;
  deactivated_reason: string | null;
  replaced_by: string | null;
}

/** A token as listed: never a secret. */
function tokenView(row: TokenRow) {
  return {
    id: row.id,
    project_id: row.project_id,
    name: row.name,
    public_key: row.public_key,
    active: Number(row.active) === 1,
    minted_by: row.minted_by,
    created_at: iso(row.created_at),
    deactivated_at: iso(row.deactivated_at),
    deactivated_reason: row.deactivated_reason,
    ...(row.replaced_by ? { replaced_by: row.replaced_by } : {}),
  };
}

/** Composer's auth.json `http-basic` entry for the repository host (the gateway, as the caller reached it). */
export function authJson(host: string, publicKey: string, privateKey: string) {
  return { 'http-basic': { [host]: { username: publicKey, password: privateKey } } };
}

function repositoryHost(ctx: NativeContext<unknown>): string {
  const host = ctx.c.req.header('host') ?? 'localhost';
  return /^[A-Za-z0-9.:[\]-]{1,255}$/.test(host) ? host : 'localhost';
}

/** Project tokens: list (no secrets), read (private key and auth.json), create, rotate, revoke. */
export function tokenHandlers(deps: NativeDeps): NativeHandlers {
  const { db, now, secretBox } = deps;

  /** Mints a token for the caller in the transaction; the caller's role is re-checked under the lock first. */
  async function mint(tx: Transaction, ctx: NativeContext<unknown>, name: string, at: number) {
    const ws = ctx.param('ws');
    const p = ctx.param('p');
    const user = userOf(ctx.outcome);
    const id = newId('tok');
    const publicKey = generatePublicKey();
    const privateKey = generatePrivateKey();
    // Minted "as member" when the workspace role alone allows it, else as a guest of this project:
    // removing the guest later ends exactly the tokens that guest access produced.
    const member = await tx.execute({ sql: 'SELECT role FROM memberships WHERE workspace_id = ? AND user_id = ?', args: [ws, user.id] });
    const memberRole = member.rows[0]?.['role'];
    const mintedAs = typeof memberRole === 'string' && ctx.outcome.bundle.table.allows([memberRole as 'owner'], 'token:create') ? 'member' : 'guest';
    await tx.execute({
      sql: `INSERT INTO tokens (id, workspace_id, project_id, name, public_key, secret_hash, secret_ciphertext, key_id,
                                minted_by, minted_as, active, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)`,
      args: [id, ws, p, name, publicKey, sha256(privateKey), secretBox.seal(privateKey, id), secretBox.keyId, user.id, mintedAs, at],
    });
    const row: TokenRow = {
      id, workspace_id: ws, project_id: p, name, public_key: publicKey, secret_ciphertext: new ArrayBuffer(0), key_id: secretBox.keyId,
      minted_by: user.id, minted_as: mintedAs, active: 1, created_at: at, deactivated_at: null, deactivated_reason: null, replaced_by: null,
    };
    return { row, privateKey };
  }

  async function tokenRow(tx: { execute: Transaction['execute'] }, ctx: NativeContext<unknown>): Promise<TokenRow | undefined> {
    const r = await tx.execute({
      sql: 'SELECT * FROM tokens WHERE id = ? AND project_id = ? AND workspace_id = ?',
      args: [ctx.param('t'), ctx.param('p'), ctx.param('ws')],
    });
    return r.rows[0] as unknown as TokenRow | undefined;
  }

  const withKeys = (ctx: NativeContext<unknown>, row: TokenRow, privateKey: string) => ({
    token: { ...tokenView(row), private_key: privateKey },
    auth_json: authJson(repositoryHost(ctx), row.public_key, privateKey),
  });

  return {
    'GET /v1/workspaces/{ws}/projects/{p}/tokens': defineNative({
      async handle(ctx) {
        const r = await db.execute({
          sql: 'SELECT * FROM tokens WHERE project_id = ? AND workspace_id = ? ORDER BY created_at, id',
          args: [ctx.param('p'), ctx.param('ws')],
        });
        return json(200, { tokens: r.rows.map((row) => tokenView(row as unknown as TokenRow)) });
      },
    }),

    'GET /v1/workspaces/{ws}/projects/{p}/tokens/{t}': defineNative({
      async handle(ctx) {
        const row = await tokenRow(db, ctx);
        if (!row) return respond(ctx, fail(problem('not_found', 'no such token in this project')));
        // A deactivated token's key is of no use to anyone: it is not handed out again.
        if (Number(row.active) !== 1) return json(200, { token: { ...tokenView(row), private_key: null } });
        const privateKey = secretBox.open(new Uint8Array(row.secret_ciphertext), row.id, row.key_id);
        return json(200, withKeys(ctx, row, privateKey));
      },
    }),

    'POST /v1/workspaces/{ws}/projects/{p}/tokens': defineNative({
      body: createTokenBody,
      async handle(ctx) {
        const { name } = ctx.body;
        const user = userOf(ctx.outcome);
        const result = await db.write(async (tx): Promise<Result<ReturnType<typeof withKeys>>> => {
          // Under the write lock: a concurrent removal either committed (and this is refused) or
          // commits after (and deactivates this token). No active token of a removed member survives.
          const checked = await reauthorize(tx, ctx.outcome, [{ action: 'token:create' }]);
          if (!checked.ok) return fail(checked.problem);
          const at = now();
          const { row, privateKey } = await mint(tx, ctx, name, at);
          await audit(tx, { workspaceId: row.workspace_id, actor: `user:${user.id}`, action: 'token.minted', target: `token:${row.id}`, detail: { project_id: row.project_id, name, minted_as: row.minted_as }, requestId: ctx.requestId, at });
          return ok(withKeys(ctx, row, privateKey));
        });
        return respond(ctx, result, 201);
      },
    }),

    'POST /v1/workspaces/{ws}/projects/{p}/tokens/{t}/rotate': defineNative({
      async handle(ctx) {
        const user = userOf(ctx.outcome);
        const result = await db.write(async (tx): Promise<Result<ReturnType<typeof withKeys> & { rotated: string }>> => {
          const checked = await reauthorize(tx, ctx.outcome, [{ action: 'token:rotate' }]);
          if (!checked.ok) return fail(checked.problem);
          const old = await tokenRow(tx, ctx);
          if (!old) return fail(problem('not_found', 'no such token in this project'));
          if (Number(old.active) !== 1) return fail(problem('conflict', 'only an active token can be rotated'));
          const at = now();
          const { row, privateKey } = await mint(tx, ctx, old.name, at);
          // The old key stops working in the same transaction the new one starts.
          await tx.execute({
            sql: "UPDATE tokens SET active = 0, deactivated_at = ?, deactivated_reason = 'rotated', replaced_by = ? WHERE id = ?",
            args: [at, row.id, old.id],
          });
          await audit(tx, { workspaceId: row.workspace_id, actor: `user:${user.id}`, action: 'token.rotated', target: `token:${old.id}`, detail: { replaced_by: row.id, project_id: row.project_id }, requestId: ctx.requestId, at });
          return ok({ rotated: old.id, ...withKeys(ctx, row, privateKey) });
        });
        return respond(ctx, result);
      },
    }),

    'DELETE /v1/workspaces/{ws}/projects/{p}/tokens/{t}': defineNative({
      async handle(ctx) {
        const user = userOf(ctx.outcome);
        const result = await db.write(async (tx): Promise<Result<{ token: ReturnType<typeof tokenView> }>> => {
          const checked = await reauthorize(tx, ctx.outcome, [{ action: 'token:revoke' }]);
          if (!checked.ok) return fail(checked.problem);
          const row = await tokenRow(tx, ctx);
          if (!row) return fail(problem('not_found', 'no such token in this project'));
          if (Number(row.active) !== 1) return ok({ token: tokenView(row) });
          const at = now();
          await tx.execute({ sql: "UPDATE tokens SET active = 0, deactivated_at = ?, deactivated_reason = 'revoked' WHERE id = ?", args: [at, row.id] });
          await audit(tx, { workspaceId: row.workspace_id, actor: `user:${user.id}`, action: 'token.revoked', target: `token:${row.id}`, detail: { project_id: row.project_id }, requestId: ctx.requestId, at });
          return ok({ token: tokenView({ ...row, active: 0, deactivated_at: at, deactivated_reason: 'revoked' }) });
        });
        return respond(ctx, result);
      },
    }),
  };
}
