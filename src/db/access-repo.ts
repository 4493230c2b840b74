import type { GuestRole, WorkspaceRole } from '../domain.ts';
import { isGuestRole, isWorkspaceRole } from '../domain.ts';
import type { InStatement, InValue, ResultSet, Transaction } from '@libsql/client';

/** Anything that runs a statement: the client, or an open transaction. */
export interface Executor {
  execute(stmt: InStatement): Promise<ResultSet>;
  /** A prepared single-row read, where the source has one (the Db's hot path). */
  readOne?(sql: string, args: Record<string, InValue>): Promise<Record<string, unknown> | undefined>;
  /** A "write" transaction, where the source is the database itself (not an open transaction). */
  write?<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
}

/** What the decision needs to know about a user and the request's resources. */
export interface UserAccess {
  workspaceRole: WorkspaceRole | undefined;
  /** Guest role on the request's project, or (guests=workspace) the best guest role on any project of the workspace. */
  guestRole: GuestRole | undefined;
  /** The caller is a guest of at least one live project of the workspace. */
  guestInWorkspace: boolean;
  /** {p} is a live project of {ws} (true when the route has no {p}). */
  projectInWorkspace: boolean;
  /** {t} is a token of {p} (true when the route has no {t}). */
  tokenInProject: boolean;
}

export interface UserAccessQuery {
  userId: string;
  workspaceId: string;
  projectId: string | undefined;
  tokenId: string | undefined;
  guestScope: 'project' | 'workspace';
}

/** The invite a rank check is about: its role, and whether it is a project-guest invite. */
export interface InviteTarget {
  id: string;
  role: WorkspaceRole;
  projectId: string | undefined;
  status: string;
}

/** A project token found by its private key's hash. */
export interface TokenRecord {
  id: string;
  publicKey: string;
  projectId: string;
  workspaceId: string;
  active: boolean;
  projectLive: boolean;
}

// One statement, every lookup by primary key or index: the role in the workspace, the guest
// role, whether the caller is a guest anywhere in it, and the containment of {p} and {t}.
const USER_ACCESS_SQL = `
SELECT
  (SELECT role FROM memberships WHERE workspace_id = :ws AND user_id = :user) AS ws_role,
  CASE WHEN :scope = 'workspace'
    THEN (SELECT g.role FROM project_guests g
            WHERE g.user_id = :user AND g.workspace_id = :ws
            ORDER BY g.role = 'developer' DESC LIMIT 1)
    ELSE (SELECT g.role FROM project_guests g WHERE g.project_id = :p AND g.user_id = :user AND g.workspace_id = :ws)
  END AS guest_role,
  EXISTS (SELECT 1 FROM project_guests g WHERE g.user_id = :user AND g.workspace_id = :ws) AS guest_in_ws,
  CASE WHEN :p IS NULL THEN 1
    ELSE EXISTS (SELECT 1 FROM projects WHERE id = :p AND workspace_id = :ws AND deleted_at IS NULL) END AS project_ok,
  CASE WHEN :t IS NULL THEN 1
    ELSE EXISTS (SELECT 1 FROM tokens WHERE id = :t AND project_id = :p) END AS token_ok`;

const TOKEN_SQL = `
SELECT t.id, t.public_key, t.project_id, t.workspace_id, t.active, (p.deleted_at IS NULL) AS project_live
FROM tokens t JOIN projects p ON p.id = t.project_id
WHERE t.secret_hash = :hash`;

/** Insert or refresh a user row: args (id, email, email_verified, created_at, last_seen_at). */
export const UPSERT_USER_SQL = `
INSERT INTO users (id, email, email_verified, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
  email = coalesce(excluded.email, users.email),
  email_verified = CASE WHEN excluded.email IS NULL THEN users.email_verified ELSE excluded.email_verified END,
  last_seen_at = excluded.last_seen_at`;

/** The reads on the decision path. Every call reads the database: access changes are immediate. */
export class AccessRepo {
  readonly #read: (sql: string, args: Record<string, InValue>) => Promise<Record<string, unknown> | undefined>;

  constructor(private readonly db: Executor) {
    this.#read = db.readOne
      ? db.readOne.bind(db)
      : async (sql, args) => (await db.execute({ sql, args })).rows[0] as Record<string, unknown> | undefined;
  }

  async userAccess(q: UserAccessQuery): Promise<UserAccess> {
    const row = await this.#read(USER_ACCESS_SQL, {
      ws: q.workspaceId,
      user: q.userId,
      p: q.projectId ?? null,
      t: q.tokenId ?? null,
      scope: q.guestScope,
    });
    if (!row) throw new Error('access query returned no row');
    const wsRole = row['ws_role'];
    const guestRole = row['guest_role'];
    return {
      workspaceRole: isWorkspaceRole(wsRole) ? wsRole : undefined,
      guestRole: isGuestRole(guestRole) ? guestRole : undefined,
      guestInWorkspace: Number(row['guest_in_ws']) === 1,
      projectInWorkspace: Number(row['project_ok']) === 1,
      tokenInProject: Number(row['token_ok']) === 1,
    };
  }

  async tokenBySecretHash(hash: Buffer): Promise<TokenRecord | undefined> {
    const row = await this.#read(TOKEN_SQL, { hash });
    if (!row) return undefined;
    return {
      id: String(row['id']),
      publicKey: String(row['public_key']),
      projectId: String(row['project_id']),
      workspaceId: String(row['workspace_id']),
      active: Number(row['active']) === 1,
      projectLive: Number(row['project_live']) === 1,
    };
  }

  /** The current role of `userId` in the workspace, if a member. */
  async memberRole(workspaceId: string, userId: string): Promise<WorkspaceRole | undefined> {
    const row = await this.#read('SELECT role FROM memberships WHERE workspace_id = :ws AND user_id = :user', {
      ws: workspaceId,
      user: userId,
    });
    const role = row?.['role'];
    return isWorkspaceRole(role) ? role : undefined;
  }

  async inviteTarget(workspaceId: string, inviteId: string): Promise<InviteTarget | undefined> {
    const row = await this.#read('SELECT id, role, project_id, status FROM invites WHERE workspace_id = :ws AND id = :id', {
      ws: workspaceId,
      id: inviteId,
    });
    if (!row || !isWorkspaceRole(row['role'])) return undefined;
    return {
      id: String(row['id']),
      role: row['role'],
      projectId: row['project_id'] === null ? undefined : String(row['project_id']),
      status: String(row['status']),
    };
  }

  /** Records a user the gateway has seen (and their latest email; a token without one keeps the known one). */
  async recordUser(user: { id: string; email: string | undefined; emailVerified: boolean }, now = Date.now()): Promise<void> {
    const stmt = { sql: UPSERT_USER_SQL, args: [user.id, user.email ?? null, user.emailVerified ? 1 : 0, now, now] };
    // Inside a transaction the caller's write lock covers it; on its own it takes one in "write" mode.
    if (this.db.write) await this.db.write((tx) => tx.execute(stmt));
    else await this.db.execute(stmt);
  }
}
