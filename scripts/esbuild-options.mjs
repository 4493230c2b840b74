// How our TypeScript is compiled to what runs: scripts/build.mjs (dist/, what ships) and the
// benchmark's servers (bench/spawn.ts) use these same options, so the bench measures the code
// as it ships. Dependencies stay external (node_modules, including the native libsql driver).
export const COMPILE_OPTIONS = {
  bundle: true,
  packages: 'external',
  platform: 'node',
  format: 'esm',
  target: 'node20.19',
  sourcemap: true,
  // Stack traces name src/… lines (node --enable-source-maps, set by bin/).
  sourcesContent: false,
  logLevel: 'warning',
  legalComments: 'none',
};
