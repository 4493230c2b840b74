import { mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { runFixtures } from '../policy-tools/fixture-run.ts';
import { FixtureError, loadFixtureFile, resolveFixturePaths, type Fixture } from '../policy-tools/fixtures.ts';
import { EXIT_FAILED, EXIT_OK, parseCommandArgs, policyDirFrom, UsageError, type Command } from './command.ts';
import { renderJunit } from './format/junit.ts';
import { renderTestReport, totals } from './format/test-report.ts';
import { loadBundleForCommand, POLICIES_HELP, POLICIES_OPTION } from './policy-options.ts';

export const DEFAULT_FIXTURES = 'fixtures';

/** Loads fixture files (folders expand to their *.yaml); a file that does not load is a usage error. */
export async function loadFixturesForCommand(paths: readonly string[], cwd: string): Promise<Fixture[]> {
  const files = await resolveFixturePaths(paths, cwd);
  if (files.length === 0) throw new UsageError(`no fixture files in ${paths.join(', ')}`);
  const fixtures: Fixture[] = [];
  for (const file of files) {
    try {
      fixtures.push(await loadFixtureFile(file, cwd));
    } catch (err) {
      if (err instanceof FixtureError) throw new UsageError(`invalid fixture: ${err.message}`);
      throw err;
    }
  }
  return fixtures;
}

export const testCommand: Command = {
  name: 'test',
  summary: 'run decision fixtures against the policy',
  help: `Usage: packagento-gate test [FILES…] [--junit FILE] [--policies DIR]

Runs decision fixtures (CONTRACT §6) against the policy folder, through the same
loader and decision path as \`serve\`: each fixture's world is seeded into a temporary
libSQL database; action cases resolve roles there and decide with the policy's
decision table; request cases go through the route map and the gate with real JWTs
(and HTTP Basic for project tokens).

  FILES             fixture files or folders (folders: their *.yaml); default: ${DEFAULT_FIXTURES}/
  --junit FILE      also write JUnit XML (one testcase per fixture case)
${POLICIES_HELP}

Prints each failure as "FAIL file:line case: expected …, got …", then a last line
"N passed, N failed". Exit 0 when all pass, 1 when any fails, 2 when a fixture or
the policy cannot be loaded.
`,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, { ...POLICIES_OPTION, junit: { type: 'string' } }, true);
    const bundle = await loadBundleForCommand({ kind: 'dir', dir: policyDirFrom(values.policies, io.env) }, io.cwd);
    let paths = positionals;
    if (paths.length === 0) {
      const exists = await stat(resolve(io.cwd, DEFAULT_FIXTURES)).then((s) => s.isDirectory(), () => false);
      if (!exists) throw new UsageError(`no FILES given and no ${DEFAULT_FIXTURES}/ folder here`);
      paths = [DEFAULT_FIXTURES];
    }
    const fixtures = await loadFixturesForCommand(paths, io.cwd);
    const results = await runFixtures(fixtures, bundle);
    if (values.junit !== undefined) {
      const out = resolve(io.cwd, values.junit);
      try {
        await mkdir(dirname(out), { recursive: true });
        await writeFile(out, renderJunit(results, { timestamp: new Date() }));
      } catch (err) {
        throw new UsageError(`--junit: cannot write ${values.junit}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
    }
    io.stdout(renderTestReport(results));
    return totals(results).failed > 0 ? EXIT_FAILED : EXIT_OK;
  },
};
