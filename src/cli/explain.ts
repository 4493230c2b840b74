import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { WORKSPACE_ROLES, isWorkspaceRole, SUBJECTS } from '../domain.ts';
import { ExplainError, explainRequest } from '../policy-tools/explain.ts';
import { FixtureError, parseWorldFile, type WorldFile } from '../policy-tools/fixtures.ts';
import { displayPath } from '../policy-tools/input.ts';
import { EXIT_OK, parseCommandArgs, policyDirFrom, UsageError, type Command } from './command.ts';
import { renderExplanation } from './format/explain.ts';
import { loadBundleForCommand, POLICIES_HELP, POLICIES_OPTION } from './policy-options.ts';

export const explainCommand: Command = {
  name: 'explain',
  summary: 'explain one decision: route, roles, the policy lines that decided',
  help: `Usage: packagento-gate explain --as USER [--world FILE] [--body JSON] [--target-role ROLE]
                               [--policies DIR] METHOD PATH

Sends one request through the gate (hygiene, route map, authentication, roles read from
a seeded libSQL database, the decision table) and explains the result: the route matched,
the canonical path, the roles found, each check with the policy.csv lines that allowed it
(Casbin's enforceEx, with the g / g2 lines it went through), and for a deny the subjects
that would have been allowed.

  --as USER          with --world: a user or token of that world, or "anonymous";
                     without: a subject (${SUBJECTS.join(', ')}) or "anonymous",
                     in a synthesized world where you have exactly that role on the
                     path's workspace and project
  --world FILE       a YAML file with a world: (any fixture file will do)
  --body JSON        the request body (routes whose rank check reads "role")
  --target-role ROLE synthesized worlds: the current role of the member {user} or the
                     role of the invite {id} the path names
${POLICIES_HELP}

Example: packagento-gate explain --as billing GET /v1/workspaces/acme/projects/web/tokens/t1
`,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(
      argv,
      {
        ...POLICIES_OPTION,
        as: { type: 'string' },
        world: { type: 'string' },
        body: { type: 'string' },
        'target-role': { type: 'string' },
      },
      true,
    );
    if (values.as === undefined) throw new UsageError('--as USER is required');
    if (positionals.length !== 2) throw new UsageError('expected METHOD PATH');
    const [method, target] = positionals as [string, string];
    if (!/^[A-Z]{1,16}$/.test(method)) throw new UsageError(`"${method}" is not an HTTP method (use upper case, e.g. GET)`);
    if (!target.startsWith('/')) throw new UsageError('PATH must start with /');
    const targetRole = values['target-role'];
    if (targetRole !== undefined && !isWorkspaceRole(targetRole)) throw new UsageError(`--target-role must be one of ${WORKSPACE_ROLES.join(', ')}`);
    let body: Record<string, unknown> | undefined;
    if (values.body !== undefined) {
      try {
        body = JSON.parse(values.body) as Record<string, unknown>;
      } catch {
        throw new UsageError('--body must be JSON');
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new UsageError('--body must be a JSON object');
    }
    let world: WorldFile | undefined;
    if (values.world !== undefined) {
      const file = displayPath(values.world, io.cwd);
      let text: string;
      try {
        text = await readFile(resolve(io.cwd, values.world), 'utf8');
      } catch (err) {
        throw new UsageError(`--world: cannot read ${values.world}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      try {
        world = parseWorldFile(text, file);
      } catch (err) {
        if (err instanceof FixtureError) throw new UsageError(`--world: ${err.message}`);
        throw err;
      }
    }
    const bundle = await loadBundleForCommand({ kind: 'dir', dir: policyDirFrom(values.policies, io.env) }, io.cwd);
    try {
      const explanation = await explainRequest({ bundle, as: values.as, method, target, body, world, targetRole });
      io.stdout(renderExplanation(explanation, bundle));
    } catch (err) {
      if (err instanceof ExplainError) throw new UsageError(err.message);
      throw err;
    }
    return EXIT_OK;
  },
};
