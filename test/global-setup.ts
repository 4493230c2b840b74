import { execFileSync } from 'node:child_process';

/**
 * Tests that spawn `bin/packagento-gate.mjs` run the compiled dist/, as production does:
 * build it from the current sources first (esbuild, well under a second).
 */
export default function setup(): void {
  execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
}
