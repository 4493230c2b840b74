import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACME, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

type Doc = {
  openapi: string;
  paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: object }> }; responses: Record<string, { $ref?: string; content?: Record<string, { schema: object }> }> }>>;
  components: { schemas: Record<string, object>; responses: Record<string, { content: Record<string, { schema: object }> }> };
};

let t: TestGateway;
let doc: Doc;
beforeAll(async () => {
  t = await startTestGateway({ world: ACME });
  const res = await fetch(`${t.gw.url}/_gate/openapi.json`);
  expect(res.status).toBe(200);
  doc = (await res.json()) as Doc;
});
afterAll(() => t.close());

describe('/_gate/openapi.json', () => {
  it('is a valid OpenAPI 3.1 document (@seriousme/openapi-schema-validator)', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc) as never);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('has every native route of the route map, and only those', () => {
    const native = t.gw.policy.current.routes.routes.filter((r) => r.to === 'native');
    const ops = Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`));
    expect(ops.sort()).toEqual(native.map((r) => r.id).sort());
  });

  it('describes request bodies with the zod schemas the gateway validates with', () => {
    const body = doc.paths['/v1/workspaces/{ws}/invites']!['post']!.requestBody!.content['application/json']!.schema as Record<string, any>;
    expect(body).toMatchObject({ type: 'object', required: ['email', 'role'], additionalProperties: false });
    expect(body['properties'].role.enum).toEqual(['owner', 'admin', 'developer', 'billing', 'viewer']);
    const guest = doc.paths['/v1/workspaces/{ws}/projects/{p}/guests']!['post']!.requestBody!.content['application/json']!.schema as Record<string, any>;
    expect(guest['properties'].role.enum).toEqual(['developer', 'viewer']);
    expect(doc.paths['/v1/workspaces/{ws}/projects/{p}/tokens']!['get']!.requestBody).toBeUndefined();
  });
});

describe('native answers conform to the document (contract)', () => {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  const checked: string[] = [];

  /** Validates a gateway answer against the operation the decision log says it came from. */
  async function conforms(res: Response): Promise<any> {
    const text = await res.text();
    const requestId = res.headers.get('x-request-id');
    const decision = t.decisions.find((d) => d.request_id === requestId);
    expect(decision, `a decision line for ${requestId}`).toBeDefined();
    const [method, pattern] = String(decision!.route).split(' ') as [string, string];
    const op = doc.paths[pattern]?.[method.toLowerCase()];
    expect(op, `an operation for ${decision!.route}`).toBeDefined();
    const declared = op!.responses[String(res.status)];
    expect(declared, `${decision!.route} declares ${res.status}`).toBeDefined();
    const content = declared!.$ref ? doc.components.responses[declared!.$ref.split('/').at(-1)!]!.content : declared!.content!;
    const type = res.headers.get('content-type')!.split(';')[0]!;
    const media = content[type];
    expect(media, `${decision!.route} ${res.status} as ${type}`).toBeDefined();
    // Component refs (#/components/schemas/Problem) resolve against this document's components.
    const validate = ajv.compile({ ...media!.schema, components: doc.components });
    const body = JSON.parse(text);
    const ok = validate(body);
    expect(validate.errors ?? [], `${decision!.route} ${res.status}: ${text}`).toEqual([]);
    expect(ok).toBe(true);
    checked.push(`${decision!.route} ${res.status}`);
    return body;
  }

  it('every native route answers as documented, and so do its refusals', async () => {
    const r = (method: string, path: string, as?: string, body?: unknown) => t.request(method, path, { ...(as ? { as } : {}), ...(body !== undefined ? { body } : {}) });
    await conforms(await r('PUT', '/v1/me/workspace', 'olga'));
    await conforms(await r('PUT', '/v1/me/workspace', 'olga'));
    await conforms(await r('POST', '/v1/workspaces', 'alice', { name: 'Side project' }));
    await conforms(await r('GET', '/v1/me/workspaces', 'gina'));
    await conforms(await r('GET', '/v1/me/workspaces?switcher=true', 'alice'));
    await conforms(await r('GET', '/v1/workspaces/acme', 'bob'));
    await conforms(await r('GET', '/v1/workspaces/acme/members', 'vic'));
    await conforms(await r('PATCH', '/v1/workspaces/acme/members/bill', 'bob', { role: 'viewer' }));
    const inv = await conforms(await r('POST', '/v1/workspaces/acme/invites', 'bob', { email: 'newbie@example.com', role: 'developer' }));
    await conforms(await r('GET', '/v1/workspaces/acme/invites', 'bob'));
    const token = String(inv.accept_url).split('/').at(-1)!;
    await conforms(await r('GET', `/v1/invites/${token}`));
    await conforms(await r('POST', `/v1/invites/${token}/accept`, 'newbie'));
    const second = await conforms(await r('POST', '/v1/workspaces/acme/invites', 'alice', { email: 'later@example.com', role: 'admin' }));
    await conforms(await r('POST', `/v1/workspaces/acme/invites/${second.invite.id}/reissue`, 'alice'));
    await conforms(await r('DELETE', `/v1/workspaces/acme/invites/${second.invite.id}`, 'alice'));
    await conforms(await r('GET', '/v1/workspaces/acme/projects', 'gus'));
    const project = await conforms(await r('POST', '/v1/workspaces/acme/projects', 'bob', { name: 'Docs' }));
    await conforms(await r('GET', `/v1/workspaces/acme/projects/${project.id}`, 'vic'));
    await conforms(await r('PATCH', `/v1/workspaces/acme/projects/${project.id}`, 'bob', { name: 'Docs site' }));
    await conforms(await r('GET', '/v1/workspaces/acme/projects/web/guests', 'bob'));
    await conforms(await r('POST', '/v1/workspaces/acme/projects/web/guests', 'bob', { email: 'guest2@example.com', role: 'viewer' }));
    await conforms(await r('GET', '/v1/workspaces/acme/projects/web/tokens', 'dave'));
    const minted = await conforms(await r('POST', '/v1/workspaces/acme/projects/web/tokens', 'dave', { name: 'ci' }));
    await conforms(await r('GET', `/v1/workspaces/acme/projects/web/tokens/${minted.token.id}`, 'dave'));
    const rotated = await conforms(await r('POST', `/v1/workspaces/acme/projects/web/tokens/${minted.token.id}/rotate`, 'dave'));
    await conforms(await r('DELETE', `/v1/workspaces/acme/projects/web/tokens/${rotated.token.id}`, 'dave'));
    await conforms(await r('DELETE', '/v1/workspaces/acme/projects/web/guests/gus', 'bob'));
    await conforms(await r('DELETE', `/v1/workspaces/acme/projects/${project.id}`, 'bob'));
    await conforms(await r('DELETE', '/v1/workspaces/acme/members/vic', 'bob'));
    await conforms(await r('DELETE', '/v1/workspaces/acme/members/me', 'bill'));
    await conforms(await r('GET', '/v1/workspaces/acme/permissions', 'bob'));
    await conforms(await r('GET', '/v1/workspaces/acme/permissions', 'gina'));
    await conforms(await r('GET', '/v1/workspaces/acme/projects/web/permissions', 'gina'));
    const page = await conforms(await r('GET', '/v1/workspaces/acme/audit?limit=2', 'alice'));
    if (page.next_cursor) await conforms(await r('GET', `/v1/workspaces/acme/audit?limit=2&cursor=${page.next_cursor}`, 'alice'));
    await conforms(await r('GET', '/v1/workspaces/acme/audit', 'vic'));
    // Refusals are documented problem+json too.
    await conforms(await r('GET', '/v1/workspaces/acme/members'));
    await conforms(await r('GET', '/v1/workspaces/acme/invites', 'dave'));
    await conforms(await r('GET', '/v1/workspaces/globex', 'bob'));
    await conforms(await r('POST', '/v1/workspaces/acme/projects', 'bob', { name: 'x', extra: true }));
    await conforms(await r('GET', `/v1/invites/${token}`));

    // The validator does refuse a body that is not as documented (so the passes above mean something).
    const ws = doc.paths['/v1/workspaces/{ws}']!['get']!.responses['200']!.content!['application/json']!.schema;
    expect(ajv.validate(ws, { id: 'acme', name: 'Acme', my_role: 'owner', created_at: new Date().toISOString(), secret: 'x' })).toBe(false);
    expect(ajv.validate(ws, { id: 'acme', name: 'Acme', my_role: 'emperor', created_at: new Date().toISOString() })).toBe(false);

    // Every native route was exercised with at least its success answer.
    const native = t.gw.policy.current.routes.routes.filter((route) => route.to === 'native').map((route) => route.id);
    const succeeded = new Set(checked.filter((c) => / 20[01]$/.test(c)).map((c) => c.replace(/ \d+$/, '')));
    expect(native.filter((id) => !succeeded.has(id))).toEqual([]);
    expect(checked.some((c) => c.endsWith(' 401'))).toBe(true);
    expect(checked.some((c) => c.endsWith(' 403'))).toBe(true);
    expect(checked.some((c) => c.endsWith(' 404'))).toBe(true);
    expect(checked.some((c) => c.endsWith(' 400'))).toBe(true);
    expect(checked.some((c) => c.endsWith(' 410'))).toBe(true);
  });
});
