import { z } from 'zod';
import { GUEST_ROLES, WORKSPACE_ROLES } from '../domain.ts';
import { PROBLEMS } from '../http/problem.ts';
import type { Route } from '../policy/route-map.ts';
import type { NativeHandlers } from './types.ts';

/**
 * OpenAPI 3.1 of the native (gateway-answered) API, generated at run time from the same
 * zod schemas that validate the request bodies (each handler's `body`), with zod 4's own
 * JSON Schema output (`z.toJSONSchema`, draft 2020-12 — the dialect OpenAPI 3.1 uses, so
 * no conversion layer is needed). The answers are described by the zod schemas below, one
 * per route and status; test/ops/openapi.test.ts checks real answers against them.
 *
 * Paths and operations come from the route map (policies/routes.txt): a native route
 * added there with a handler appears here with no other change.
 */

const isoTime = z.iso.datetime();
const nullableTime = isoTime.nullable();
const workspaceRole = z.enum(WORKSPACE_ROLES);
const guestRole = z.enum(GUEST_ROLES);
const anyRole = z.enum([...WORKSPACE_ROLES, ...GUEST_ROLES] as [string, ...string[]]);
const inviteStatus = z.enum(['pending', 'accepted', 'revoked', 'expired']);

const invite = z.object({
  id: z.string(),
  email: z.string(),
  role: anyRole,
  status: inviteStatus,
  expires_at: nullableTime,
  project_id: z.string().optional(),
});
const createdInvite = z.object({ invite, accept_url: z.string() });
const project = z.object({ id: z.string(), workspace_id: z.string(), name: z.string(), created_at: isoTime, updated_at: isoTime });
const token = z.object({
  id: z.string(),
  project_id: z.string(),
  name: z.string(),
  public_key: z.string(),
  active: z.boolean(),
  minted_by: z.string().nullable(),
  created_at: isoTime,
  deactivated_at: nullableTime,
  deactivated_reason: z.string().nullable(),
  replaced_by: z.string().optional(),
});
/** A token with its secret (create, read, rotate): never logged, shown to who may read it. */
const tokenWithKeys = z.looseObject({
  token: token.extend({ private_key: z.string().nullable().optional() }).loose(),
  private_key: z.string().optional(),
  auth_json: z.unknown().optional(),
});
const memberView = z.object({ user_id: z.string(), email: z.string().nullable(), role: workspaceRole });
const workspaceSummary = z.object({ id: z.string(), name: z.string(), role: workspaceRole.nullable() });

export const PROBLEM_SCHEMA = z.looseObject({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  code: z.enum(Object.keys(PROBLEMS) as [string, ...string[]]),
  decision_id: z.string().optional(),
});

/** What `permissions` answers at either level (CONTRACT §4). */
const permissions = z.object({
  workspace: z.string(),
  actions: z.array(z.string()),
  grantable_roles: z.array(workspaceRole),
  guest_grantable_roles: z.array(guestRole),
  policy_revision: z.string(),
});

/** The success answer of every native route: status and body schema, by route id. */
export const NATIVE_RESPONSES: Record<string, { status: number; description: string; body: z.ZodType }[]> = {
  'PUT /v1/me/workspace': [
    { status: 200, description: 'the caller’s own workspace, already there', body: workspaceSummary.extend({ created: z.literal(false) }) },
    { status: 201, description: 'created now, the caller its owner', body: workspaceSummary.extend({ created: z.literal(true) }) },
  ],
  'POST /v1/workspaces': [{ status: 201, description: 'created; the caller is its owner', body: workspaceSummary }],
  'GET /v1/me/workspaces': [
    {
      status: 200,
      description: 'workspaces the caller is a member of, and projects they are a guest of',
      body: z.object({
        workspaces: z.array(z.object({ id: z.string(), name: z.string(), role: workspaceRole })),
        guest_projects: z.array(z.object({ workspace_id: z.string(), project_id: z.string(), role: guestRole })),
      }),
    },
  ],
  'GET /v1/workspaces/{ws}': [
    { status: 200, description: 'the workspace', body: z.object({ id: z.string(), name: z.string(), my_role: workspaceRole.nullable(), created_at: isoTime }) },
  ],
  'GET /v1/workspaces/{ws}/members': [
    {
      status: 200,
      description: 'members and pending invites (no links)',
      body: z.object({ members: z.array(memberView.extend({ joined_at: isoTime })), invites: z.array(invite) }),
    },
  ],
  'PATCH /v1/workspaces/{ws}/members/{user}': [
    { status: 200, description: 'the member with the new role', body: z.looseObject({ role: workspaceRole, deactivated_tokens: z.number().int() }) },
  ],
  'DELETE /v1/workspaces/{ws}/members/{user}': [
    { status: 200, description: 'removed; their tokens on the workspace deactivated', body: z.object({ removed: z.string(), deactivated_tokens: z.number().int() }) },
  ],
  'DELETE /v1/workspaces/{ws}/members/me': [
    { status: 200, description: 'the caller left the workspace', body: z.object({ removed: z.string(), deactivated_tokens: z.number().int() }) },
  ],
  'GET /v1/workspaces/{ws}/invites': [
    {
      status: 200,
      description: 'every invite of the workspace',
      body: z.object({
        invites: z.array(
          invite.extend({ invited_by: z.string().nullable(), created_at: nullableTime, accepted_by: z.string().nullable(), accepted_at: nullableTime }),
        ),
      }),
    },
  ],
  'POST /v1/workspaces/{ws}/invites': [{ status: 201, description: 'the invite and its acceptance link', body: createdInvite }],
  'DELETE /v1/workspaces/{ws}/invites/{id}': [{ status: 200, description: 'revoked', body: invite }],
  'POST /v1/workspaces/{ws}/invites/{id}/reissue': [{ status: 200, description: 'a new link and expiry; the old link is dead', body: createdInvite }],
  'GET /v1/invites/{token}': [
    {
      status: 200,
      description: 'what the link invites to (no sign-in needed)',
      body: z.object({
        workspace: z.object({ id: z.string(), name: z.string().nullable() }),
        project: z.object({ id: z.string(), name: z.string().nullable() }).optional(),
        role: anyRole,
        invited_by: z.object({ user_id: z.string().nullable(), email: z.string().nullable() }),
        email: z.string(),
        expires_at: nullableTime,
        status: inviteStatus,
      }),
    },
  ],
  'POST /v1/invites/{token}/accept': [
    { status: 200, description: 'accepted: the caller’s new role', body: z.object({ workspace_id: z.string(), project_id: z.string().optional(), role: anyRole }) },
  ],
  'GET /v1/workspaces/{ws}/projects': [{ status: 200, description: 'projects the caller can see', body: z.object({ projects: z.array(project) }) }],
  'POST /v1/workspaces/{ws}/projects': [{ status: 201, description: 'created', body: project }],
  'GET /v1/workspaces/{ws}/projects/{p}': [{ status: 200, description: 'the project', body: project }],
  'PATCH /v1/workspaces/{ws}/projects/{p}': [{ status: 200, description: 'renamed', body: project }],
  'DELETE /v1/workspaces/{ws}/projects/{p}': [
    { status: 200, description: 'deleted; its tokens deactivated', body: z.object({ deleted: z.string(), deactivated_tokens: z.number().int() }) },
  ],
  'GET /v1/workspaces/{ws}/projects/{p}/guests': [
    {
      status: 200,
      description: 'guests of the project and pending guest invites',
      body: z.object({ guests: z.array(z.object({ user_id: z.string(), email: z.string().nullable(), role: guestRole, added_at: isoTime })), invites: z.array(invite) }),
    },
  ],
  'POST /v1/workspaces/{ws}/projects/{p}/guests': [{ status: 201, description: 'a guest invite scoped to the project', body: createdInvite }],
  'DELETE /v1/workspaces/{ws}/projects/{p}/guests/{user}': [
    {
      status: 200,
      description: 'guest access removed; tokens they minted there as a guest deactivated',
      body: z.object({ removed: z.string(), project_id: z.string(), deactivated_tokens: z.number().int() }),
    },
  ],
  'GET /v1/workspaces/{ws}/projects/{p}/tokens': [{ status: 200, description: 'tokens, without secrets', body: z.object({ tokens: z.array(token) }) }],
  'GET /v1/workspaces/{ws}/projects/{p}/tokens/{t}': [{ status: 200, description: 'the token with its private key and an auth.json snippet', body: tokenWithKeys }],
  'POST /v1/workspaces/{ws}/projects/{p}/tokens': [{ status: 201, description: 'both keys (the private key is shown again by token:read)', body: tokenWithKeys }],
  'POST /v1/workspaces/{ws}/projects/{p}/tokens/{t}/rotate': [
    { status: 200, description: 'new keys; the old token deactivated', body: tokenWithKeys.extend({ rotated: z.string() }) },
  ],
  'DELETE /v1/workspaces/{ws}/projects/{p}/tokens/{t}': [{ status: 200, description: 'revoked', body: z.object({ token }) }],
  'GET /v1/workspaces/{ws}/permissions': [
    {
      status: 200,
      description: 'what the caller may do at workspace level, read off the live decision table; grantable_roles is the invite role picker',
      body: permissions.extend({
        role: workspaceRole.nullable(),
        guest_projects: z.array(z.object({ project_id: z.string(), role: guestRole })),
      }),
    },
  ],
  'GET /v1/workspaces/{ws}/projects/{p}/permissions': [
    {
      status: 200,
      description: 'the same for one project (member role ∪ guest role on it)',
      body: permissions.extend({ project: z.string(), role: workspaceRole.nullable(), guest_role: guestRole.nullable() }),
    },
  ],
  'GET /v1/workspaces/{ws}/audit': [
    {
      status: 200,
      description: 'audit events, newest first; `?limit=` (1–200) and the opaque `?cursor=` of the previous page; never secrets',
      body: z.object({
        events: z.array(
          z.object({
            id: z.number().int(),
            time: isoTime,
            actor: z.string(),
            action: z.string(),
            target: z.string().nullable(),
            detail: z.record(z.string(), z.unknown()).nullable(),
            request_id: z.string().nullable(),
          }),
        ),
        next_cursor: z.string().nullable(),
      }),
    },
  ],
};

/** The statuses a native route can refuse with (problem+json), beyond its own. */
const REFUSALS: Record<string, string> = {
  '400': 'bad request: hygiene, an invalid or unexpected body (problem+json)',
  '401': 'no or bad credentials (problem+json, WWW-Authenticate)',
  '403': 'visible but not allowed: `code` forbidden names the action (problem+json)',
  '404': 'no such resource, or not visible to the caller (problem+json)',
  '409': 'conflicts with the current state (problem+json)',
  '410': 'the invite link is used, revoked or expired (problem+json)',
  '413': 'body over 64 KiB (problem+json)',
  '414': 'request target too long (problem+json)',
  '415': 'the body is not JSON (problem+json)',
  '500': 'internal error; details only in the operational log (problem+json)',
  '503': 'the database cannot be read or written right now (problem+json)',
};

type JsonSchema = Record<string, unknown>;

/** JSON Schema for a component: zod's draft 2020-12 output without its `$schema` line. */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

const operationId = (id: string) =>
  id
    .toLowerCase()
    .replace(/[{}]/g, '')
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_|_$/g, '');

export interface OpenApiOptions {
  version: string;
  natives: NativeHandlers;
  routes: readonly Route[];
}

/** The OpenAPI 3.1 document of the native API. */
export function buildOpenApi(o: OpenApiOptions): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of o.routes) {
    if (route.to !== 'native') continue;
    const handler = o.natives[route.id];
    if (!handler) continue;
    const params = route.segments.filter((s) => s.kind === 'param').map((s) => s.name);
    const responses: Record<string, unknown> = {};
    for (const r of NATIVE_RESPONSES[route.id] ?? []) {
      responses[String(r.status)] = { description: r.description, content: { 'application/json': { schema: jsonSchema(r.body, 'output') } } };
    }
    for (const [status, description] of Object.entries(REFUSALS)) {
      if (route.auth === 'none' && status === '401') continue;
      responses[status] = { $ref: `#/components/responses/problem_${status}`, description };
    }
    const operation: Record<string, unknown> = {
      operationId: operationId(route.id),
      summary: route.action ? `${route.action}` : 'no action (authentication is the check)',
      'x-packagento-action': route.action ?? null,
      ...(route.auth === 'none' ? { security: [] } : {}),
      ...(params.length > 0
        ? {
            parameters: params.map((name) => ({
              name,
              in: 'path',
              required: true,
              schema: { type: 'string' },
              ...(name === 'user' ? { description: 'a user id (JWT sub), percent-encoded; `me` is the caller' } : {}),
            })),
          }
        : {}),
      ...(handler.body
        ? {
            requestBody: {
              required: handler.bodyOptional !== true,
              content: { 'application/json': { schema: jsonSchema(handler.body, 'input') } },
            },
          }
        : {}),
      responses,
    };
    (paths[route.pattern] ??= {})[route.method.toLowerCase()] = operation;
  }
  const problemResponses = Object.fromEntries(
    Object.entries(REFUSALS).map(([status, description]) => [
      `problem_${status}`,
      { description, content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } },
    ]),
  );
  return {
    openapi: '3.1.0',
    info: {
      title: 'Packagento Gate native API',
      version: o.version,
      description: 'The team-and-roles API the gateway answers itself (CONTRACT §4). Generated from the request-body schemas the gateway validates with.',
    },
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      schemas: { Problem: jsonSchema(PROBLEM_SCHEMA, 'output') },
      responses: problemResponses,
    },
  };
}
