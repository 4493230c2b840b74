import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { createAuthenticator, type Authenticator, type Principal } from '../authn/authenticate.ts';
import { createJwtVerifier } from '../authn/jwt.ts';
import { createSecretBox } from '../crypto/secret-box.ts';
import { AccessRepo } from '../db/access-repo.ts';
import { openDb, type Db } from '../db/client.ts';
import { migrate } from '../db/migrations.ts';
import { subjectsFor } from '../pipeline/access.ts';
import { createGate, type Gate } from '../pipeline/gate.ts';
import type { GateOutcome } from '../pipeline/types.ts';
import { isProblem, type Problem } from '../http/problem.ts';
import type { Action, Subject } from '../domain.ts';
import type { Target } from '../policy/decision-table.ts';
import type { PolicyBundle } from '../policy/bundle.ts';
import { seedWorld, type SeededWorld, type World } from './world.ts';

/** Issuer and audience of the JWTs a world environment signs and verifies. */
const ISSUER = 'urn:packagento-gate:fixtures';
const AUDIENCE = 'urn:packagento-gate:fixtures';

/** The principal name that sends no credentials. */
export const ANONYMOUS = 'anonymous';

/** An action asked outside HTTP: who, where, what. */
export interface ActionQuery {
  as: string | undefined;
  workspace: string;
  project: string | undefined;
  action: Action;
  target: Target;
}

export interface ActionDecision {
  allow: boolean;
  subjects: Subject[];
  /** Why the principal has no subjects here, when authentication failed. */
  problem: Problem | undefined;
}

export interface HttpQuery {
  as: string | undefined;
  method: string;
  target: string;
  body: Record<string, unknown> | undefined;
  headers: readonly (readonly [string, string])[];
}

/**
 * A seeded world behind the real decision path: a temporary libSQL file (migrated and
 * seeded), the real JWT verifier (an ephemeral HS256 secret; real signed JWTs), the real
 * authenticator and AccessRepo, and the real Gate over the given policy. Used by the
 * fixture runner and `explain`, so both decide exactly as `serve` does.
 */
export interface WorldEnv {
  readonly gate: Gate;
  readonly access: AccessRepo;
  readonly authenticator: Authenticator;
  readonly seeded: SeededWorld;
  readonly world: World;
  /** The Authorization header value `as` sends (Bearer JWT for a user, Basic for a token), or undefined. */
  authorization(as: string | undefined): Promise<string | undefined>;
  /** Decides an action for a principal in a scope: same role query and decision table as the gate. */
  decideAction(q: ActionQuery): Promise<ActionDecision>;
  /** Sends a request through Gate.evaluate. */
  request(q: HttpQuery): Promise<GateOutcome>;
  close(): Promise<void>;
}

export async function createWorldEnv(world: World, policy: () => PolicyBundle): Promise<WorldEnv> {
  const dir = await mkdtemp(join(tmpdir(), 'gate-world-'));
  let db: Db | undefined;
  try {
    // A file, not :memory:: libSQL opens a fresh connection after a transaction, and a
    // fresh :memory: connection is a fresh, empty database.
    db = await openDb({ url: `file:${join(dir, 'world.db')}` });
    await migrate(db);
    const seeded = await seedWorld(db, world, createSecretBox(randomBytes(32)));
    const secret = randomBytes(32).toString('base64url');
    const jwt = await createJwtVerifier({ key: { kind: 'secret', secret }, issuer: ISSUER, audience: AUDIENCE });
    const access = new AccessRepo(db);
    const authenticator = createAuthenticator({ jwt, access });
    const gate = createGate({ policy, authenticator, access, mode: 'enforce' });
    const jwts = new Map<string, string>();
    const key = new TextEncoder().encode(secret);
    const openDbHandle = db;

    const authorization = async (as: string | undefined): Promise<string | undefined> => {
      if (as === undefined || as === ANONYMOUS) return undefined;
      const token = seeded.tokens.get(as);
      if (token) return 'Basic ' + Buffer.from(`${token.publicKey}:${token.privateKey}`).toString('base64');
      let signed = jwts.get(as);
      if (signed === undefined) {
        const declared = world.users?.[as];
        signed = await new SignJWT({
          email: declared?.email ?? `${as}@example.com`,
          email_verified: declared?.email_verified ?? true,
        })
          .setProtectedHeader({ alg: 'HS256' })
          .setSubject(as)
          .setIssuer(ISSUER)
          .setAudience(AUDIENCE)
          .setIssuedAt()
          .setExpirationTime('1h')
          .sign(key);
        jwts.set(as, signed);
      }
      return `Bearer ${signed}`;
    };

    const authenticate = async (as: string | undefined): Promise<Principal | Problem> => {
      const header = await authorization(as);
      if (header === undefined) return { kind: 'anonymous' };
      const [scheme, credential] = header.split(' ') as [string, string];
      if (scheme === 'Bearer') return authenticator.user({ scheme: 'bearer', token: credential });
      const decoded = Buffer.from(credential, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      return authenticator.token({ scheme: 'basic', user: decoded.slice(0, colon), password: decoded.slice(colon + 1) });
    };

    return {
      gate,
      access,
      authenticator,
      seeded,
      world,
      authorization,
      async decideAction(q) {
        const principal = await authenticate(q.as);
        if (isProblem(principal)) return { allow: false, subjects: [], problem: principal };
        let subjects: Subject[] = [];
        if (principal.kind === 'user') {
          const found = await access.userAccess({
            userId: principal.id,
            workspaceId: q.workspace,
            projectId: q.project,
            tokenId: undefined,
            guestScope: 'project',
          });
          // A project outside the workspace is not there at all (the gate answers 404).
          if (found.projectInWorkspace) subjects = subjectsFor(principal, found);
        } else if (principal.kind === 'token') {
          // A project token acts on its own project only.
          if (principal.workspaceId === q.workspace && principal.projectId === q.project) subjects = subjectsFor(principal, undefined);
        }
        return { allow: policy().table.allows(subjects, q.action, q.target), subjects, problem: undefined };
      },
      async request(q) {
        // A client always sends Host; a case may send its own (e.g. to test a bad one).
        const rawHeaders: string[] = q.headers.some(([n]) => n.toLowerCase() === 'host') ? [] : ['Host', 'gateway.test'];
        const header = await authorization(q.as);
        if (header !== undefined) rawHeaders.push('Authorization', header);
        if (q.body !== undefined) rawHeaders.push('Content-Type', 'application/json');
        for (const [n, v] of q.headers) rawHeaders.push(n, v);
        return gate.evaluate(
          { method: q.method, target: q.target, rawHeaders, readJsonBody: async () => q.body },
          randomUUID(),
        );
      },
      async close() {
        openDbHandle.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    db?.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
