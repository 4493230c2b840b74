import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** The files of a policy folder, by path relative to the folder (always with `/`). */
export interface PolicySource {
  /** Where it came from, for messages: a folder path or `REF:path`. */
  origin: string;
  files: ReadonlyMap<string, string>;
}

export class PolicySourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicySourceError';
  }
}

const MAX_POLICY_BYTES = 4 * 1024 * 1024;

/** Reads every regular, non-hidden file under `dir`. */
export async function loadPolicySourceFromDir(dir: string): Promise<PolicySource> {
  const files = new Map<string, string>();
  let total = 0;
  async function walk(current: string): Promise<void> {
    let entries;
    try {
      entries = await readdir(current, { withFileTypes: true });
    } catch (err) {
      throw new PolicySourceError(`cannot read policy folder ${current}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const full = join(current, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) {
        const size = (await stat(full)).size;
        total += size;
        if (total > MAX_POLICY_BYTES) throw new PolicySourceError(`policy folder ${dir} is larger than 4 MiB`);
        files.set(relative(dir, full).split(sep).join('/'), await readFile(full, 'utf8'));
      }
    }
  }
  await walk(dir);
  return { origin: dir, files };
}

/**
 * Reads a policy folder as it is at a git ref (`git ls-tree` + `git show`): no checkout,
 * so `diff origin/main` works on a dirty work tree.
 */
export async function loadPolicySourceFromGit(ref: string, dir: string, cwd = process.cwd()): Promise<PolicySource> {
  if (ref.startsWith('-')) throw new PolicySourceError(`"${ref}" is not a git ref`);
  const git = async (args: string[]) => {
    try {
      const { stdout } = await execFileAsync('git', args, { cwd, maxBuffer: MAX_POLICY_BYTES * 2 });
      return stdout;
    } catch (err) {
      const stderr = String((err as { stderr?: string }).stderr ?? '').trim().split('\n')[0];
      throw new PolicySourceError(`git ${args[0]} failed for ${ref}: ${stderr || String(err)}`);
    }
  };
  const prefix = (await git(['rev-parse', '--show-prefix'])).trim();
  const folder = join(prefix, dir).split(sep).join('/').replace(/^\.\//, '').replace(/\/$/, '');
  // --full-tree: the folder is relative to the repository root (like REF:path below), not to cwd.
  const listing = await git(['ls-tree', '--full-tree', '-r', '-z', '--name-only', `${ref}`, '--', folder]);
  const names = listing.split('\0').filter(Boolean);
  if (names.length === 0) throw new PolicySourceError(`no policy folder "${folder}" at ${ref}`);
  const files = new Map<string, string>();
  for (const name of names) {
    const rel = name.slice(folder.length + 1);
    if (rel.split('/').some((part) => part.startsWith('.'))) continue;
    files.set(rel, await git(['show', `${ref}:${name}`]));
  }
  return { origin: `${ref}:${folder}`, files };
}

/** The policy revision: a content hash over every file's name and bytes, in name order. */
export function policyRevision(source: PolicySource): string {
  const hash = createHash('sha256');
  for (const name of [...source.files.keys()].sort()) {
    hash.update(name).update('\0').update(source.files.get(name)!).update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}
