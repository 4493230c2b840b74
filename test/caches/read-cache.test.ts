import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { randomBytes } from 'node:crypto';
import { seedWorld } from '../../src/policy-tools/world.ts';
import { createSecretBox } from '../../src/crypto/secret-box.ts';
import { AccessRepo } from '../../src/db/access-repo.ts';
import { sha256 } from '../../src/crypto/hash.ts';
import { openDb, type Db } from '../../src/db/client.ts';
import { migrate } from '../../src/db/migrations.ts';

/**
 * The hot-path reads reuse rows only while PRAGMA data_version is unchanged: a commit
 * by any other connection — this process's client, or another process — is seen by
 * the very next read.
 */
describe('the decision-path read cache never outlives a commit', () => {
  let dir: string;
  let db: Db;
  let repo: AccessRepo;
  let tokens: Awaited<ReturnType<typeof seedWorld>>['tokens'];
  const q = { userId: 'vic', workspaceId: 'acme', projectId: 'web', tokenId: undefined, guestScope: 'project' as const };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gate-read-cache-'));
    db = await openDb({ url: `file:${join(dir, 'gate.db')}` });
    await migrate(db);
    ({ tokens } = await seedWorld(
      db,
      {
        workspaces: { acme: { members: { alice: 'owner', vic: 'viewer' }, projects: { web: null } } },
        tokens: { t1: { project: 'acme/web', minted_by: 'alice' } },
      },
      createSecretBox(randomBytes(32)),
    ));
    repo = new AccessRepo(db);
  });
  afterAll(async () => {
    db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('an unchanged database serves the row from the cache', async () => {
    await repo.userAccess(q);
    const before = { ...db.readStats! };
    for (let i = 0; i < 5; i++) expect((await repo.userAccess(q)).workspaceRole).toBe('viewer');
    expect(db.readStats!.hits - before.hits).toBe(5);
    expect(db.readStats!.misses - before.misses).toBe(0);
  });

  test('a change committed through the client is seen at once', async () => {
    expect((await repo.userAccess(q)).workspaceRole).toBe('viewer');
    expect((await repo.userAccess(q)).workspaceRole).toBe('viewer'); // served from the cache
    await db.execute("UPDATE memberships SET role = 'billing' WHERE user_id = 'vic'");
    expect((await repo.userAccess(q)).workspaceRole).toBe('billing');
    await db.write(async (tx) => {
      await tx.execute("DELETE FROM memberships WHERE user_id = 'vic'");
    });
    expect((await repo.userAccess(q)).workspaceRole).toBeUndefined();
  });

  test('a change committed by another process is seen at once', async () => {
    const t1 = tokens.get('t1')!;
    expect((await repo.tokenBySecretHash(sha256(t1.privateKey)))?.active).toBe(true);
    const script = `
      const Database = require('libsql');
      const db = new Database(process.argv[1], { timeout: 5000 });
      db.prepare("UPDATE tokens SET active = 0 WHERE id = 't1'").run();
      db.close();`;
    await new Promise<void>((resolve, reject) =>
      execFile(process.execPath, ['-e', script, join(dir, 'gate.db')], (err) => (err ? reject(err) : resolve())),
    );
    expect((await repo.tokenBySecretHash(sha256(t1.privateKey)))?.active).toBe(false);
  });

  test('arguments are told apart by type: a project named "null" is not "no project"', async () => {
    const none = await repo.userAccess({ ...q, userId: 'alice', projectId: undefined });
    expect(none.projectInWorkspace).toBe(true); // no {p}: nothing to contain
    const named = await repo.userAccess({ ...q, userId: 'alice', projectId: 'null' });
    expect(named.projectInWorkspace).toBe(false); // there is no project "null"; not the cached row above
  });
});
