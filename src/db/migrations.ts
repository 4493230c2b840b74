import type { Db } from './client.ts';

/**
 * Schema migrations, applied in order inside one write transaction each.
 * Times are unix milliseconds. Emails are stored lower-cased.
 */
export const MIGRATIONS: { id: number; name: string; sql: string }[] = [
  {
    id: 1,
    name: 'domain',
    sql: `
CREATE TABLE gate_meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

-- Users the gateway has seen (JWT sub), and the verified email used to accept invites.
CREATE TABLE users (
  id             TEXT PRIMARY KEY,
  email          TEXT,
  email_verified INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
  created_at     INTEGER NOT NULL,
  last_seen_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX users_email ON users (email);

CREATE TABLE workspaces (
  id           TEXT PRIMARY KEY,
  name         TEXT NOT NULL,
  -- set for the workspace a customer gets automatically (PUT /v1/me/workspace)
  personal_for TEXT UNIQUE REFERENCES users (id),
  created_by   TEXT NOT NULL REFERENCES users (id),
  created_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE memberships (
  workspace_id TEXT NOT NULL REFERENCES workspaces (id),
  user_id      TEXT NOT NULL REFERENCES users (id),
  role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'billing', 'viewer')),
  joined_at    INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX memberships_user ON memberships (user_id, workspace_id);

-- A workspace never loses its last owner, whoever writes.
CREATE TRIGGER memberships_keep_owner_on_update
BEFORE UPDATE OF role, workspace_id, user_id ON memberships
WHEN OLD.role = 'owner'
 AND (NEW.role <> 'owner' OR NEW.workspace_id <> OLD.workspace_id)
 AND NOT EXISTS (SELECT 1 FROM memberships m
                 WHERE m.workspace_id = OLD.workspace_id AND m.role = 'owner' AND m.user_id <> OLD.user_id)
BEGIN
  SELECT RAISE(ABORT, 'last_owner');
END;
CREATE TRIGGER memberships_keep_owner_on_delete
BEFORE DELETE ON memberships
WHEN OLD.role = 'owner'
 AND NOT EXISTS (SELECT 1 FROM memberships m
                 WHERE m.workspace_id = OLD.workspace_id AND m.role = 'owner' AND m.user_id <> OLD.user_id)
BEGIN
  SELECT RAISE(ABORT, 'last_owner');
END;

CREATE TABLE projects (
  id           TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces (id),
  name         TEXT NOT NULL,
  created_by   TEXT NOT NULL REFERENCES users (id),
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL,
  deleted_at   INTEGER
) STRICT;
CREATE INDEX projects_workspace ON projects (workspace_id, id);

CREATE TABLE project_guests (
  project_id   TEXT NOT NULL REFERENCES projects (id),
  user_id      TEXT NOT NULL REFERENCES users (id),
  -- the project's workspace, so "guest anywhere in this workspace" is one index lookup
  workspace_id TEXT NOT NULL REFERENCES workspaces (id),
  role         TEXT NOT NULL CHECK (role IN ('developer', 'viewer')),
  added_at     INTEGER NOT NULL,
  PRIMARY KEY (project_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX project_guests_user ON project_guests (user_id, workspace_id);

CREATE TRIGGER project_guests_same_workspace
BEFORE INSERT ON project_guests
WHEN NOT EXISTS (SELECT 1 FROM projects p WHERE p.id = NEW.project_id AND p.workspace_id = NEW.workspace_id)
BEGIN
  SELECT RAISE(ABORT, 'project_guests.workspace_id does not match the project');
END;

CREATE TABLE invites (
  id           TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces (id),
  -- NULL: a workspace invite; otherwise a project-guest invite for this project
  project_id   TEXT REFERENCES projects (id),
  email        TEXT NOT NULL,
  role         TEXT NOT NULL,
  status       TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'revoked', 'expired')),
  invited_by   TEXT NOT NULL REFERENCES users (id),
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  accepted_by  TEXT REFERENCES users (id),
  accepted_at  INTEGER,
  revoked_at   INTEGER,
  CHECK ((project_id IS NULL AND role IN ('owner', 'admin', 'developer', 'billing', 'viewer'))
      OR (project_id IS NOT NULL AND role IN ('developer', 'viewer')))
) STRICT;
CREATE INDEX invites_workspace ON invites (workspace_id, status);
CREATE UNIQUE INDEX invites_one_pending ON invites (workspace_id, ifnull(project_id, ''), email)
  WHERE status = 'pending';

-- Acceptance links: only a hash of the link token is stored. Re-issuing replaces the
-- current link; a replaced link stays here so it can answer 410 rather than 404.
CREATE TABLE invite_links (
  token_hash  BLOB PRIMARY KEY,
  invite_id   TEXT NOT NULL REFERENCES invites (id),
  created_at  INTEGER NOT NULL,
  replaced_at INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX invite_links_invite ON invite_links (invite_id);

CREATE TABLE tokens (
  id                TEXT PRIMARY KEY,
  workspace_id      TEXT NOT NULL REFERENCES workspaces (id),
  project_id        TEXT NOT NULL REFERENCES projects (id),
  name              TEXT NOT NULL,
  public_key        TEXT NOT NULL UNIQUE,
  -- SHA-256 of the private key: the lookup key for HTTP Basic
  secret_hash       BLOB NOT NULL UNIQUE,
  -- AES-256-GCM of the private key, the row id bound as associated data
  secret_ciphertext BLOB NOT NULL,
  key_id            TEXT NOT NULL,
  minted_by         TEXT NOT NULL REFERENCES users (id),
  minted_as         TEXT NOT NULL CHECK (minted_as IN ('member', 'guest')),
  active            INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
  created_at        INTEGER NOT NULL,
  deactivated_at    INTEGER,
  deactivated_reason TEXT,
  replaced_by       TEXT REFERENCES tokens (id)
) STRICT;
CREATE INDEX tokens_project ON tokens (project_id, active);
CREATE INDEX tokens_minter ON tokens (workspace_id, minted_by, active);

-- Once deactivated, a token never comes back (a member invited back gets no old tokens).
CREATE TRIGGER tokens_never_reactivate
BEFORE UPDATE OF active ON tokens
WHEN OLD.active = 0 AND NEW.active = 1
BEGIN
  SELECT RAISE(ABORT, 'a deactivated token cannot be reactivated');
END;

CREATE TABLE audit_events (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  at           INTEGER NOT NULL,
  workspace_id TEXT,
  actor        TEXT NOT NULL,
  action       TEXT NOT NULL,
  target       TEXT,
  detail       TEXT,
  request_id   TEXT
) STRICT;
CREATE INDEX audit_events_workspace ON audit_events (workspace_id, id);
`,
  },
  {
    id: 2,
    name: 'outbox',
    sql: `
-- Transactional outbox (CONTRACT §9): a row written in the same transaction as the change it
-- reports, delivered later by the one gateway holding the outbox lease. seq is the delivery order;
-- id is the event id receivers dedup on (webhook-id, email Message-ID).
CREATE TABLE outbox_events (
  seq             INTEGER PRIMARY KEY AUTOINCREMENT,
  id              TEXT NOT NULL UNIQUE,
  type            TEXT NOT NULL,
  workspace_id    TEXT NOT NULL,
  actor           TEXT NOT NULL,
  -- JSON; never secrets (what a webhook receiver gets as "data")
  data            TEXT NOT NULL,
  -- AES-256-GCM (secret-box, the event id as associated data) of the event's secrets: the invite link
  secret          BLOB,
  secret_key_id   TEXT,
  status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  -- a failing event is given up (dead) once a try fails at or after this time
  give_up_at      INTEGER NOT NULL,
  created_at      INTEGER NOT NULL,
  delivered_at    INTEGER,
  -- per channel: when it took the event (NULL: not yet, or the channel does not take this type)
  email_sent_at   INTEGER,
  webhook_sent_at INTEGER,
  -- the last failure, redacted: never the link or other secrets
  last_error      TEXT,
  CHECK ((secret IS NULL) = (secret_key_id IS NULL))
) STRICT;
-- the head of each workspace's queue, and listings by status
CREATE INDEX outbox_events_queue ON outbox_events (status, workspace_id, seq);

-- One deliverer among the gateways sharing this database: the holder of an unexpired lease.
CREATE TABLE outbox_lease (
  name       TEXT PRIMARY KEY,
  holder     TEXT NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT;
`,
  },
];

export interface MigrationResult {
  applied: number[];
  current: number;
}

/** Applies pending migrations. Safe to run from several processes at once (each step is one write transaction). */
export async function migrate(db: Db): Promise<MigrationResult> {
  await db.execute(
    'CREATE TABLE IF NOT EXISTS schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT',
  );
  const applied: number[] = [];
  for (const m of MIGRATIONS) {
    const done = await db.write(async (tx) => {
      const exists = await tx.execute({ sql: 'SELECT 1 FROM schema_migrations WHERE id = ?', args: [m.id] });
      if (exists.rows.length > 0) return false;
      await tx.executeMultiple(m.sql);
      await tx.execute({
        sql: 'INSERT INTO schema_migrations (id, name, applied_at) VALUES (?, ?, ?)',
        args: [m.id, m.name, Date.now()],
      });
      return true;
    });
    if (done) applied.push(m.id);
  }
  const latest = MIGRATIONS[MIGRATIONS.length - 1]!.id;
  const current = await db.execute('SELECT max(id) AS v FROM schema_migrations');
  const version = Number(current.rows[0]?.['v'] ?? 0);
  if (version > latest) throw new Error(`database schema version ${version} is newer than this gateway (${latest})`);
  return { applied, current: version };
}

/** Is the schema at the version this code needs? (readiness) */
export async function schemaIsCurrent(db: Db): Promise<boolean> {
  const r = await db.execute('SELECT max(id) AS v FROM schema_migrations');
  return Number(r.rows[0]?.['v'] ?? 0) === MIGRATIONS[MIGRATIONS.length - 1]!.id;
}
