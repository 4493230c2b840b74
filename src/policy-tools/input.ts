import { stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import { buildPolicyBundle, type PolicyBundle } from '../policy/bundle.ts';
import { loadPolicySourceFromDir, loadPolicySourceFromGit, type PolicySource } from '../policy/source.ts';

/** How a policy revision was named on the command line. */
export type PolicySpec = { kind: 'dir'; dir: string } | { kind: 'git'; ref: string; dir: string };

/** A path as the user would want to read it: relative to `cwd` when inside it. */
export function displayPath(path: string, cwd: string): string {
  const full = resolve(cwd, path);
  const rel = relative(cwd, full);
  return rel === '' ? '.' : rel.startsWith('..') || isAbsolute(rel) ? full : rel;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * `diff BASE [HEAD]`: an existing folder is a policy folder; anything else is a git ref
 * whose `policyDir` is read with `git show` (no checkout).
 */
export async function resolvePolicySpec(arg: string, policyDir: string, cwd: string): Promise<PolicySpec> {
  if (await isDirectory(resolve(cwd, arg))) return { kind: 'dir', dir: arg };
  return { kind: 'git', ref: arg, dir: policyDir };
}

/** Reads a policy folder (messages and origins use the path relative to `cwd`). */
export async function loadSource(spec: PolicySpec, cwd: string): Promise<PolicySource> {
  if (spec.kind === 'git') return loadPolicySourceFromGit(spec.ref, spec.dir, cwd);
  const source = await loadPolicySourceFromDir(resolve(cwd, spec.dir));
  return { ...source, origin: displayPath(spec.dir, cwd) };
}

/** Loads and compiles a policy revision with the loader `serve` uses. */
export async function loadBundle(spec: PolicySpec, cwd: string): Promise<PolicyBundle> {
  return buildPolicyBundle(await loadSource(spec, cwd));
}
