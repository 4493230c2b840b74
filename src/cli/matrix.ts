import { computeMatrix } from '../policy-tools/matrix.ts';
import { EXIT_OK, parseCommandArgs, policyDirFrom, UsageError, type Command } from './command.ts';
import { MATRIX_FORMATS, renderMatrix, type MatrixFormat } from './format/matrix.ts';
import { loadBundleForCommand, POLICIES_HELP, POLICIES_OPTION } from './policy-options.ts';

export const matrixCommand: Command = {
  name: 'matrix',
  summary: 'print every subject × action decision of the policy',
  help: `Usage: packagento-gate matrix [--format md|json|csv] [--policies DIR]

Prints the complete decision table the gateway decides with: every subject (the five
workspace roles, guest:developer, guest:viewer, token, none) × every action, and for
rank-ruled actions every target role. Sorted in domain order (subjects by rank, actions
and target roles as the gateway lists them), so two runs of one revision are identical.

  --format md       a markdown table, one row per action and target role (default)
  --format json     {"revision": "…", "decisions": [{"subject", "action", "target_role", "allow"}, …]}
  --format csv      subject,action,target_role,allow
${POLICIES_HELP}
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(argv, { ...POLICIES_OPTION, format: { type: 'string', short: 'f' } });
    const format = (values.format ?? 'md') as MatrixFormat;
    if (!MATRIX_FORMATS.includes(format)) throw new UsageError(`--format must be one of ${MATRIX_FORMATS.join(', ')}`);
    const bundle = await loadBundleForCommand({ kind: 'dir', dir: policyDirFrom(values.policies, io.env) }, io.cwd);
    io.stdout(renderMatrix(computeMatrix(bundle), format));
    return EXIT_OK;
  },
};
