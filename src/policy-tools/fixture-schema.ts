import { z } from 'zod';
import { ACTIONS, WORKSPACE_ROLES } from '../domain.ts';
import { worldSchema } from './world.ts';

/**
 * The decision-fixture file format (CONTRACT §6), as zod schemas. The loader
 * (fixtures.ts) parses with these; `fixtureJsonSchema()` renders the same
 * schemas as the JSON Schema editors read (`fixtures/schema.json`).
 */

const name = z.string().regex(/^[A-Za-z0-9._~-]{1,64}$/, 'names are 1-64 unreserved characters');
const projectRef = z.string().regex(/^[A-Za-z0-9._~-]{1,64}\/[A-Za-z0-9._~-]{1,64}$/, 'a project is WORKSPACE/PROJECT');

/** Who makes the request: a user or a token of the world, or `anonymous` (no credentials). */
const principal = name.describe('a user or token of the world, or "anonymous" for no credentials');

/** `action` or `action@target-role`, e.g. `member:invite@owner`. */
export const ACTION_SELECTOR = /^[a-z]+:[a-z-]+(@[a-z]+)?$/;
const actionSelector = z
  .string()
  .regex(ACTION_SELECTOR, 'an action, or ACTION@TARGET_ROLE (e.g. member:invite@owner)')
  .describe('an action (every target role of a rank-ruled action), or ACTION@TARGET_ROLE');

/** A decision on an action: roles resolved from the world, decided with the policy's decision table. */
export const actionCaseSchema = z
  .strictObject({
    name: z.string().min(1).optional(),
    as: principal.optional(),
    action: z.enum(ACTIONS, { error: (iss) => `unknown action ${JSON.stringify(iss.input)}` }),
    workspace: name.optional().describe('decide at workspace scope (guest roles do not count)'),
    project: projectRef.optional().describe('decide on this project (WORKSPACE/PROJECT): guest roles and tokens count here'),
    target_role: z
      .enum(WORKSPACE_ROLES, { error: `target_role is one of ${WORKSPACE_ROLES.join(', ')}` })
      .optional()
      .describe('for rank-ruled actions: the role granted or acted on'),
    expect: z.enum(['allow', 'deny'], { error: 'an action case expects allow or deny (statuses are for request cases)' }),
  })
  .describe('an action case');

/** A request through the route map and the real gate (hygiene, authentication, visibility, rank checks). */
export const httpCaseSchema = z
  .strictObject({
    name: z.string().min(1).optional(),
    as: principal.optional(),
    request: z
      .string()
      .regex(/^[A-Z]{1,16} \/\S*$/, 'a request is "METHOD /path", e.g. "GET /v1/workspaces/acme"')
      .describe('METHOD /path (sent exactly as written: no normalisation)'),
    body: z.record(z.string(), z.unknown()).optional().describe('JSON body (native routes read it for rank checks)'),
    headers: z.record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/), z.string()).optional(),
    expect: z
      .union([z.enum(['allow', 'deny']), z.literal(400), z.literal(401), z.literal(403), z.literal(404), z.literal(405)], {
        error: 'a request case expects allow, deny, 400, 401, 403, 404 or 405',
      })
      .describe('allow, deny (403 or 404), or an exact status'),
  })
  .describe('an HTTP case');

/**
 * Cerbos-style table: every principal listed under `allow` is asked every action in `actions`;
 * the ones in its list are expected to be allowed, every other one denied.
 */
export const tableSchema = z.strictObject({
  name: z.string().min(1).optional(),
  workspace: name.optional(),
  project: projectRef.optional(),
  actions: z.array(actionSelector).min(1),
  allow: z.record(principal, z.array(actionSelector)),
});

export const fixtureFileSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().optional(),
  world: worldSchema,
  cases: z.array(z.union([actionCaseSchema, httpCaseSchema])).optional(),
  tables: z.array(tableSchema).optional(),
});

export type ActionCaseInput = z.infer<typeof actionCaseSchema>;
export type HttpCaseInput = z.infer<typeof httpCaseSchema>;
export type TableInput = z.infer<typeof tableSchema>;

/** The JSON Schema of a fixture file (draft-07, which yaml-language-server reads). */
export function fixtureJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(fixtureFileSchema, { target: 'draft-7', io: 'input' }) as Record<string, unknown>;
  return {
    $schema: schema['$schema'],
    $id: 'https://packagento.com/schemas/gate-fixture.json',
    title: 'Packagento Gate decision fixture',
    description:
      'A small world (workspaces, members, projects, guests, tokens, invites) and the decisions expected in it. ' +
      'Regenerate with UPDATE_GOLDEN=1 npx vitest run test/policy/fixtures.test.ts.',
    ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$schema')),
  };
}
