import { z } from 'zod';
import { GUEST_ROLES, isGuestRole, WORKSPACE_ROLES } from '../domain.ts';
import { generatePrivateKey, generatePublicKey } from '../authn/keys.ts';
import type { SecretBox } from '../crypto/secret-box.ts';
import { sha256 } from '../crypto/hash.ts';
import type { Db } from '../db/client.ts';

/**
 * A small world of workspaces, members, projects, guests and tokens, as decision
 * fixtures declare it (CONTRACT §6). Names are used as ids: workspace `acme`,
 * project `web`, user `alice` (email alice@example.com), token `t1`.
 */
/** Invite statuses as the invites table stores them. */
export const INVITE_STATUSES = ['pending', 'accepted', 'revoked', 'expired'] as const;

const name = z.string().regex(/^[A-Za-z0-9._~-]{1,64}$/, 'names are 1-64 unreserved characters');

export const worldSchema = z
  .object({
    users: z.record(name, z.strictObject({ email: z.string().optional(), email_verified: z.boolean().optional() })).optional(),
    workspaces: z
      .record(
        name,
        z.strictObject({
          members: z.record(name, z.enum(WORKSPACE_ROLES)).optional(),
          projects: z
            .record(
              name,
              z.strictObject({ guests: z.record(name, z.enum(GUEST_ROLES)).optional(), deleted: z.boolean().optional() }).nullable(),
            )
            .optional(),
        }),
      )
      .optional(),
    tokens: z
      .record(
        name,
        z.strictObject({
          project: z.string().regex(/^[^/]+\/[^/]+$/, 'project is WORKSPACE/PROJECT'),
          minted_by: name,
          active: z.boolean().optional(),
        }),
      )
      .optional(),
    /** Invites (for rank checks on revoke / re-issue): a workspace invite, or a project-guest invite. */
    invites: z
      .record(
        name,
        z.strictObject({
          workspace: name.optional(),
          project: z.string().regex(/^[^/]+\/[^/]+$/, 'project is WORKSPACE/PROJECT').optional(),
          role: z.enum(WORKSPACE_ROLES),
          email: z.string().optional(),
          invited_by: name,
          status: z.enum(INVITE_STATUSES).optional(),
        }),
      )
      .optional(),
  })
  .strict();

export type World = z.infer<typeof worldSchema>;

/** Invite validity when a world does not say (CONTRACT §1: 14 days). */
const INVITE_TTL_MS = 14 * 24 * 60 * 60 * 1000;

export interface SeededToken {
  id: string;
  publicKey: string;
  privateKey: string;
  projectId: string;
  workspaceId: string;
}

export interface SeededWorld {
  users: Set<string>;
  tokens: Map<string, SeededToken>;
}

export class WorldError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorldError';
  }
}

/** Writes a world into an empty, migrated database in one write transaction. */
export async function seedWorld(db: Db, world: World, secretBox: SecretBox, now = Date.now()): Promise<SeededWorld> {
  const users = new Set<string>(Object.keys(world.users ?? {}));
  const projectWorkspace = new Map<string, string>();
  for (const [ws, w] of Object.entries(world.workspaces ?? {})) {
    for (const u of Object.keys(w.members ?? {})) users.add(u);
    for (const [p, proj] of Object.entries(w.projects ?? {})) {
      if (projectWorkspace.has(p)) throw new WorldError(`project "${p}" appears in two workspaces; project names must be unique`);
      projectWorkspace.set(p, ws);
      for (const g of Object.keys(proj?.guests ?? {})) users.add(g);
    }
    if (!Object.values(w.members ?? {}).includes('owner')) throw new WorldError(`workspace "${ws}" needs an owner`);
  }
  for (const t of Object.values(world.tokens ?? {})) users.add(t.minted_by);
  for (const [i, inv] of Object.entries(world.invites ?? {})) {
    users.add(inv.invited_by);
    if ((inv.workspace === undefined) === (inv.project === undefined)) {
      throw new WorldError(`invite "${i}": give exactly one of workspace or project`);
    }
    if (inv.project !== undefined && !isGuestRole(inv.role)) {
      throw new WorldError(`invite "${i}": a project-guest invite's role is developer or viewer`);
    }
  }

  const tokens = new Map<string, SeededToken>();
  await db.write(async (tx) => {
    for (const u of users) {
      const declared = world.users?.[u];
      await tx.execute({
        sql: 'INSERT INTO users (id, email, email_verified, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?)',
        args: [u, (declared?.email ?? `${u}@example.com`).toLowerCase(), declared?.email_verified === false ? 0 : 1, now, now],
      });
    }
    for (const [ws, w] of Object.entries(world.workspaces ?? {})) {
      const owner = Object.entries(w.members ?? {}).find(([, r]) => r === 'owner')![0];
      await tx.execute({
        sql: 'INSERT INTO workspaces (id, name, created_by, created_at) VALUES (?, ?, ?, ?)',
        args: [ws, ws, owner, now],
      });
      for (const [u, role] of Object.entries(w.members ?? {})) {
        await tx.execute({
          sql: 'INSERT INTO memberships (workspace_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)',
          args: [ws, u, role, now],
        });
      }
      for (const [p, proj] of Object.entries(w.projects ?? {})) {
        await tx.execute({
          sql: 'INSERT INTO projects (id, workspace_id, name, created_by, created_at, updated_at, deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
          args: [p, ws, p, owner, now, now, proj?.deleted ? now : null],
        });
        for (const [g, role] of Object.entries(proj?.guests ?? {})) {
          await tx.execute({
            sql: 'INSERT INTO project_guests (project_id, user_id, workspace_id, role, added_at) VALUES (?, ?, ?, ?, ?)',
            args: [p, g, ws, role, now],
          });
        }
      }
    }
    for (const [t, spec] of Object.entries(world.tokens ?? {})) {
      const [ws, p] = spec.project.split('/') as [string, string];
      if (projectWorkspace.get(p) !== ws) throw new WorldError(`token "${t}": no project ${spec.project}`);
      const publicKey = generatePublicKey();
      const privateKey = generatePrivateKey();
      const isMember = world.workspaces?.[ws]?.members?.[spec.minted_by] !== undefined;
      await tx.execute({
        sql: `INSERT INTO tokens (id, workspace_id, project_id, name, public_key, secret_hash, secret_ciphertext, key_id,
                                  minted_by, minted_as, active, created_at)
              VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        args: [
          t,
          ws,
          p,
          t,
          publicKey,
          sha256(privateKey),
          secretBox.seal(privateKey, t),
          secretBox.keyId,
          spec.minted_by,
          isMember ? 'member' : 'guest',
          spec.active === false ? 0 : 1,
          now,
        ],
      });
      tokens.set(t, { id: t, publicKey, privateKey, projectId: p, workspaceId: ws });
    }
    for (const [i, inv] of Object.entries(world.invites ?? {})) {
      const [ws, p] = inv.project !== undefined ? (inv.project.split('/') as [string, string]) : [inv.workspace!, undefined];
      if (p !== undefined ? projectWorkspace.get(p) !== ws : world.workspaces?.[ws] === undefined) {
        throw new WorldError(`invite "${i}": no ${p !== undefined ? `project ${inv.project}` : `workspace ${ws}`}`);
      }
      await tx.execute({
        sql: `INSERT INTO invites (id, workspace_id, project_id, email, role, status, invited_by, created_at, expires_at)
              VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        args: [i, ws, p ?? null, (inv.email ?? `${i}@example.com`).toLowerCase(), inv.role, inv.status ?? 'pending', inv.invited_by, now, now + INVITE_TTL_MS],
      });
    }
  });
  return { users, tokens };
}
