import { buildPolicyBundle, PolicyError, type PolicyBundle } from '../policy/bundle.ts';
import { loadSource, type PolicySpec } from '../policy-tools/input.ts';
import { PolicySourceError, type PolicySource } from '../policy/source.ts';
import { UsageError } from './command.ts';

/** `--policies DIR`, shared by the policy commands. */
export const POLICIES_OPTION = { policies: { type: 'string' } } as const;

export const POLICIES_HELP = `  --policies DIR    the policy folder (default: GATE_POLICY_DIR, else ./policies)`;

/** A PolicyError names a file inside the folder; prefix the folder so the path can be opened. */
export function describePolicyError(err: PolicyError, origin: string): string {
  return err.file ? `${origin.replace(/\/$/, '')}/${err.message}` : `${origin}: ${err.message}`;
}

/** Reads a policy folder (or a git ref's); unreadable is a configuration error (exit 2). */
export async function loadSourceForCommand(spec: PolicySpec, cwd: string): Promise<PolicySource> {
  try {
    return await loadSource(spec, cwd);
  } catch (err) {
    if (err instanceof PolicySourceError) throw new UsageError(err.message);
    throw err;
  }
}

/**
 * Loads a policy revision with the loader `serve` uses, for a command that needs it to work
 * at all (test, matrix, diff, explain): an invalid policy is a configuration error (exit 2).
 */
export async function loadBundleForCommand(spec: PolicySpec, cwd: string): Promise<PolicyBundle> {
  const source = await loadSourceForCommand(spec, cwd);
  try {
    return await buildPolicyBundle(source);
  } catch (err) {
    if (err instanceof PolicyError) throw new UsageError(`invalid policy: ${describePolicyError(err, source.origin)}`);
    throw err;
  }
}
