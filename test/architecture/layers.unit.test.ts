/**
 * The layout's promises (README "Architecture"): imports run one way, from the
 * command line down to the domain, and nothing forms a cycle (type imports count).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import madge from 'madge';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '../../src');

/** Each seam's rank: a module imports only its own seam or seams of a lower rank. */
const RANK: Record<string, number> = {
  domain: 0, http: 0, config: 0, crypto: 0,
  log: 1, db: 1, policy: 1, telemetry: 1,
  authn: 2,
  pipeline: 3,
  team: 4, operations: 4,
  app: 5, 'policy-tools': 5,
  server: 6,
  main: 7,
  demo: 8,
  cli: 9,
};

const walk = (d: string): string[] =>
  readdirSync(d).flatMap((f) => {
    const p = join(d, f);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });

/** `src/team/members.ts` → `team`; `src/app.ts` → `app`. */
const seamOf = (rel: string) => (rel.includes('/') ? rel.split('/')[0]! : rel.replace(/\.ts$/, ''));

function imports(): { from: string; to: string }[] {
  const out: { from: string; to: string }[] = [];
  for (const file of walk(SRC).filter((f) => f.endsWith('.ts'))) {
    const rel = posix.relative(SRC, file);
    for (const m of readFileSync(file, 'utf8').matchAll(/\bfrom '(\.{1,2}\/[^']+)'|import\('(\.{1,2}\/[^']+)'\)/g)) {
      out.push({ from: rel, to: posix.normalize(posix.join(posix.dirname(rel), (m[1] ?? m[2])!)) });
    }
  }
  return out;
}

describe('the source layout', () => {
  it('ranks every seam under src/', () => {
    const seams = new Set(walk(SRC).filter((f) => f.endsWith('.ts')).map((f) => seamOf(posix.relative(SRC, f))));
    expect([...seams].filter((s) => RANK[s] === undefined)).toEqual([]);
  });

  it('imports only downwards: no module imports from its own layer or a layer above it', () => {
    const upward = imports()
      .filter(({ from, to }) => seamOf(from) !== seamOf(to) && RANK[seamOf(to)]! >= RANK[seamOf(from)]!)
      .map(({ from, to }) => `${from} → ${to}`);
    expect(upward).toEqual([]);
  });

  it('has no import cycle (madge, type imports included)', async () => {
    const graph = await madge(SRC, { fileExtensions: ['ts'], detectiveOptions: { ts: { skipTypeImports: false } } });
    expect(graph.circular()).toEqual([]);
  });
});
