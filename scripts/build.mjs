#!/usr/bin/env node
// Compiles the TypeScript sources into dist/ (plain ESM JavaScript, no loader at run time).
// Runs as `npm run build` and as the `prepare` script, so `npm install` / `npm ci` leave a
// working `npx packagento-gate`. Dependencies stay external (node_modules, including the
// native libsql driver); only our own modules are bundled, into one file per entry point.
import { cp, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMPILE_OPTIONS } from './esbuild-options.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  // An install without dev dependencies (npm ci --omit=dev) cannot build; the image builds
  // in its own stage. Say so instead of failing the install.
  console.error('packagento-gate build: esbuild is not installed (dev dependency); dist/ not built');
  process.exit(0);
}

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await esbuild.build({
  absWorkingDir: root,
  entryPoints: { cli: 'src/cli/main.ts' },
  outdir: dist,
  ...COMPILE_OPTIONS,
});
// Files the code reads next to itself (new URL('./packages/…', import.meta.url)).
await cp(join(root, 'src/demo/packages'), join(dist, 'packages'), { recursive: true });
