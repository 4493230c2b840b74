import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { basic, call, linkToken } from '../helpers/api.ts';
import { ACME, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { signUserJwt } from '../helpers/jwt.ts';

/**
 * Who may accept an invite (a string `email_verified`), what a demotion or a guest
 * re-invite takes away (the tokens minted with the old grant), and an invite whose
 * sender can no longer grant its role. Each test starts its own gateway: they change
 * roles and tokens.
 */
describe('identity and tokens', () => {
  let t: TestGateway;
  beforeEach(async () => {
    t = await startTestGateway({ world: ACME });
  });
  afterEach(async () => t?.close());

  it('email_verified "false" (a string, as some providers send it) is not verified', async () => {
    const inv = await call(t.gw.url, 'POST', '/v1/workspaces/acme/invites', { as: 'alice', body: { email: 'eve@example.com', role: 'developer' } });
    const jwt = await signUserJwt('mallory', { email: 'eve@example.com', claims: { email_verified: 'false' } });
    const res = await call(t.gw.url, 'POST', `/v1/invites/${linkToken(inv.body.accept_url)}/accept`, { headers: { authorization: `Bearer ${jwt}` } });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('invite_email_mismatch');
    const stringTrue = await signUserJwt('eve', { email: 'eve@example.com', claims: { email_verified: 'true' } });
    expect((await call(t.gw.url, 'POST', `/v1/invites/${linkToken(inv.body.accept_url)}/accept`, { headers: { authorization: `Bearer ${stringTrue}` } })).status).toBe(200);
  });

  it('a member demoted to a role without token access loses the tokens they minted as a member', async () => {
    const t1 = t.seeded.tokens.get('t1')!; // minted by dave (developer)
    const creds = basic(t1.publicKey, t1.privateKey);
    expect((await call(t.gw.url, 'GET', '/repo/packages.json', { headers: creds })).status).toBe(200);
    const demoted = await call(t.gw.url, 'PATCH', '/v1/workspaces/acme/members/dave', { as: 'bob', body: { role: 'viewer' } });
    expect(demoted.status).toBe(200);
    expect(demoted.body).toMatchObject({ role: 'viewer', deactivated_tokens: 1 });
    expect((await call(t.gw.url, 'GET', '/repo/packages.json', { headers: creds })).status).toBe(401);
    // A promotion or a sideways move between token-holding roles touches nothing.
    const t2 = t.seeded.tokens.get('t2')!; // minted by bob (admin)
    expect((await call(t.gw.url, 'PATCH', '/v1/workspaces/acme/members/bob', { as: 'alice', body: { role: 'developer' } })).body.deactivated_tokens).toBe(0);
    expect((await call(t.gw.url, 'GET', '/repo/packages.json', { headers: basic(t2.publicKey, t2.privateKey) })).status).toBe(200);
  });

  it('a guest re-invited as a viewer loses the tokens minted with the developer grant', async () => {
    const tok = await call(t.gw.url, 'POST', '/v1/workspaces/acme/projects/web/tokens', { as: 'gina', body: { name: 'laptop' } });
    expect(tok.status).toBe(201);
    const creds = basic(tok.body.token.public_key, tok.body.token.private_key);
    const inv = await call(t.gw.url, 'POST', '/v1/workspaces/acme/projects/web/guests', { as: 'alice', body: { email: 'gina2@example.com', role: 'viewer' } });
    // The invite goes to gina's (other) address; she accepts it signed in with that address.
    const jwt = await signUserJwt('gina', { email: 'gina2@example.com', emailVerified: true });
    expect((await call(t.gw.url, 'POST', `/v1/invites/${linkToken(inv.body.accept_url)}/accept`, { headers: { authorization: `Bearer ${jwt}` } })).status).toBe(200);
    expect((await call(t.gw.url, 'GET', '/repo/packages.json', { headers: creds })).status).toBe(401);
  });
});

describe('invites', () => {
  it('the preview answers 410 when the sender can no longer grant the role, as accept does', async () => {
    const g = await startTestGateway({ world: { workspaces: { w: { members: { olive: 'owner', amos: 'admin' } } } } });
    try {
      const inv = await call(g.gw.url, 'POST', '/v1/workspaces/w/invites', { as: 'amos', body: { email: 'x@example.com', role: 'admin' } });
      expect((await call(g.gw.url, 'GET', `/v1/invites/${linkToken(inv.body.accept_url)}`)).status).toBe(200);
      expect((await call(g.gw.url, 'PATCH', '/v1/workspaces/w/members/amos', { as: 'olive', body: { role: 'developer' } })).status).toBe(200);
      const preview = await call(g.gw.url, 'GET', `/v1/invites/${linkToken(inv.body.accept_url)}`);
      expect(preview.status).toBe(410);
      expect(preview.body.code).toBe('invite_revoked');
    } finally {
      await g.close();
    }
  });
});
