import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { expect } from 'vitest';
import { main } from '../../src/cli/main.ts';

/** The repository root (vitest runs from it). */
export const ROOT = resolve(import.meta.dirname, '../..');
export const GOLDEN_DIR = join(ROOT, 'test/policy/golden');
export const TEST_POLICIES = 'test/policy/policies';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process (the same `main` the bin calls), capturing its output. */
export async function runCli(argv: string[], opts: { cwd?: string; env?: Record<string, string | undefined> } = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
    env: opts.env ?? {},
    cwd: opts.cwd ?? ROOT,
  });
  return { code, stdout, stderr };
}

/**
 * Compares output with test/policy/golden/NAME. `UPDATE_GOLDEN=1` rewrites the file
 * instead (review the change in the diff before committing it).
 */
export async function expectGolden(name: string, actual: string): Promise<void> {
  const path = join(GOLDEN_DIR, name);
  if (process.env['UPDATE_GOLDEN'] === '1') {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, actual);
    return;
  }
  let expected: string;
  try {
    expected = await readFile(path, 'utf8');
  } catch {
    throw new Error(`golden file ${name} is missing: run UPDATE_GOLDEN=1 npx vitest run test/policy`);
  }
  expect(actual).toBe(expected);
}

/** A temporary copy of the shipped policies/ folder, for mutation tests. */
export async function copyPolicies(): Promise<{ dir: string; root: string; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'gate-policy-'));
  const dir = join(root, 'policies');
  await cp(join(ROOT, 'policies'), dir, { recursive: true });
  return { dir, root, cleanup: () => rm(root, { recursive: true, force: true }) };
}

/** Replaces exactly one occurrence of `from` in a file (fails loudly if the policy text moved). */
export async function editOnce(file: string, from: string | RegExp, to: string): Promise<void> {
  const text = await readFile(file, 'utf8');
  const matches = typeof from === 'string' ? text.split(from).length - 1 : (text.match(new RegExp(from.source, from.flags.includes('g') ? from.flags : from.flags + 'g')) ?? []).length;
  if (matches !== 1) throw new Error(`expected exactly one match of ${String(from)} in ${file}, found ${matches}`);
  await writeFile(file, text.replace(from, to));
}

/** A deterministic PRNG (mulberry32), so a failing property run can be replayed from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
