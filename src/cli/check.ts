import { checkInvariants } from '../policy-tools/invariant-check.ts';
import { InvariantsError, loadInvariants } from '../policy-tools/invariants.ts';
import { buildPolicyBundle, PolicyError } from '../policy/bundle.ts';
import { EXIT_FAILED, EXIT_OK, parseCommandArgs, policyDirFrom, type Command } from './command.ts';
import { renderCheckReport } from './format/check.ts';
import { describePolicyError, loadSourceForCommand, POLICIES_HELP, POLICIES_OPTION } from './policy-options.ts';

export const checkCommand: Command = {
  name: 'check',
  summary: 'check the policy folder and prove its invariants',
  help: `Usage: packagento-gate check [--policies DIR]

Loads the policy folder with the loader \`serve\` uses (model, policy, route map: a
file that does not load is reported with its file and line), then proves every
invariant in DIR/invariants.yaml over the complete decision table (every subject ×
action × target role) and the route map.

${POLICIES_HELP}

Each violation is printed as "invariants.yaml:LINE: id: description" followed by
its counter-examples (the row, and the policy.csv or routes.txt lines behind it).
Exit 0 when everything holds, 1 on a violation or an invalid policy file, 2 when
the folder cannot be read.
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(argv, POLICIES_OPTION);
    const source = await loadSourceForCommand({ kind: 'dir', dir: policyDirFrom(values.policies, io.env) }, io.cwd);
    let bundle;
    try {
      bundle = await buildPolicyBundle(source);
    } catch (err) {
      if (!(err instanceof PolicyError)) throw err;
      io.stdout(`${describePolicyError(err, source.origin)}\ncheck: the policy does not load\n`);
      return EXIT_FAILED;
    }
    let invariants;
    try {
      invariants = loadInvariants(bundle);
    } catch (err) {
      if (!(err instanceof InvariantsError)) throw err;
      io.stdout(`${err.message}\ncheck: the invariants file does not load\n`);
      return EXIT_FAILED;
    }
    const report = checkInvariants(bundle, invariants);
    io.stdout(renderCheckReport(report));
    return report.violations.length > 0 ? EXIT_FAILED : EXIT_OK;
  },
};
