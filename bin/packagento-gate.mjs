#!/usr/bin/env node
// Runs the compiled CLI (dist/, built by `npm install` through the "prepare" script, or by
// `npm run build`): plain JavaScript, no TypeScript loader and nothing written at run time.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('packagento-gate: dist/cli.js is missing; run `npm run build` (npm install runs it)\n');
  process.exit(2);
}
process.setSourceMapsEnabled?.(true);
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
