import { mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { runFixtures } from '../policy-tools/fixture-run.ts';
import { diffBundles, diffFails, diffFixtureResults, type FailOn, type PolicyDiff } from '../policy-tools/diff.ts';
import { resolvePolicySpec, type PolicySpec } from '../policy-tools/input.ts';
import { EXIT_FAILED, EXIT_OK, parseCommandArgs, policyDirFrom, UsageError, type Command } from './command.ts';
import { DIFF_FORMATS, MIN_MD_CHARS, renderDiff, renderDiffMd, type DiffFormat } from './format/diff.ts';
import { loadBundleForCommand, POLICIES_HELP, POLICIES_OPTION } from './policy-options.ts';
import { DEFAULT_FIXTURES, loadFixturesForCommand } from './test.ts';

const FAIL_ON = ['widen', 'narrow', 'any'] as const;

export const diffCommand: Command = {
  name: 'diff',
  summary: 'show which decisions and routes a policy change widens or narrows',
  help: `Usage: packagento-gate diff BASE [HEAD] [--format md|json] [--fail-on widen|narrow|any]
                            [--max-chars N] [--full-report FILE]
                            [--policies DIR] [--fixtures PATH]… [--no-fixtures]

Compares two policy revisions decision by decision (the complete decision table of each)
and route by route. BASE and HEAD are folders, or git refs whose policy folder is read
with \`git show\` (no checkout, so a dirty work tree is fine). HEAD defaults to the policy
folder in the work tree.

  --format md       GitHub-flavoured markdown for a pull-request comment (default): a
                    summary line, Widened and Narrowed tables, route map changes, and the
                    fixture cases whose outcome changes. When nothing changes, one line:
                    "no decision changes: BASE (revision) and HEAD (revision) decide alike".
  --max-chars N     markdown: keep the report within N characters (a GitHub comment holds
                    65,536): the summary and headings stay, table rows are kept widened
                    first while they fit, and a note says what was left out
  --full-report FILE  markdown: also write the complete, uncut report to FILE
  --format json     the same, for machines
  --fail-on KIND    exit 1 when the change widens (a decision or a route admits a subject it
                    did not), narrows, or changes anything (any)
  --fixtures PATH   fixture files or folders to re-run on both revisions (default: ${DEFAULT_FIXTURES}/, if present)
  --no-fixtures     do not run fixtures
${POLICIES_HELP}
                    (for a git ref: the same folder, read at that ref)
`,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(
      argv,
      {
        ...POLICIES_OPTION,
        format: { type: 'string', short: 'f' },
        'fail-on': { type: 'string' },
        fixtures: { type: 'string', multiple: true },
        'no-fixtures': { type: 'boolean' },
        'max-chars': { type: 'string' },
        'full-report': { type: 'string' },
      },
      true,
    );
    if (positionals.length < 1 || positionals.length > 2) throw new UsageError('expected BASE [HEAD]');
    const format = (values.format ?? 'md') as DiffFormat;
    if (!DIFF_FORMATS.includes(format)) throw new UsageError(`--format must be one of ${DIFF_FORMATS.join(', ')}`);
    const failOn = values['fail-on'] as FailOn | undefined;
    if (failOn !== undefined && !FAIL_ON.includes(failOn)) throw new UsageError(`--fail-on must be one of ${FAIL_ON.join(', ')}`);
    if (values['no-fixtures'] && values.fixtures) throw new UsageError('--fixtures and --no-fixtures exclude each other');
    let maxChars: number | undefined;
    if (values['max-chars'] !== undefined) {
      maxChars = /^\d+$/.test(values['max-chars']) ? Number(values['max-chars']) : Number.NaN;
      if (!(maxChars >= MIN_MD_CHARS)) throw new UsageError(`--max-chars must be a whole number of at least ${MIN_MD_CHARS}`);
    }
    if ((maxChars !== undefined || values['full-report'] !== undefined) && format !== 'md') {
      throw new UsageError('--max-chars and --full-report apply to --format md');
    }

    const policyDir = policyDirFrom(values.policies, io.env);
    const baseSpec = await resolvePolicySpec(positionals[0]!, policyDir, io.cwd);
    const headSpec: PolicySpec = positionals[1] !== undefined ? await resolvePolicySpec(positionals[1], policyDir, io.cwd) : { kind: 'dir', dir: policyDir };
    const base = await loadBundleForCommand(baseSpec, io.cwd);
    const head = await loadBundleForCommand(headSpec, io.cwd);

    let fixturePaths: string[] = [];
    if (values.fixtures) fixturePaths = values.fixtures;
    else if (!values['no-fixtures']) {
      const exists = await stat(resolve(io.cwd, DEFAULT_FIXTURES)).then((s) => s.isDirectory(), () => false);
      if (exists) fixturePaths = [DEFAULT_FIXTURES];
    }
    const diff: PolicyDiff = { ...diffBundles(base, head), fixtures: [] };
    if (fixturePaths.length > 0 && base.revision !== head.revision) {
      const fixtures = await loadFixturesForCommand(fixturePaths, io.cwd);
      diff.fixtures = diffFixtureResults(await runFixtures(fixtures, base), await runFixtures(fixtures, head));
    }
    if (values['full-report'] !== undefined) {
      const out = resolve(io.cwd, values['full-report']);
      try {
        await mkdir(dirname(out), { recursive: true });
        await writeFile(out, renderDiffMd(diff));
      } catch (err) {
        throw new UsageError(`--full-report: cannot write ${values['full-report']}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
    }
    io.stdout(renderDiff(diff, format, maxChars !== undefined ? { maxChars } : {}));
    return failOn !== undefined && diffFails(diff, failOn) ? EXIT_FAILED : EXIT_OK;
  },
};
