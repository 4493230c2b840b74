import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    // Spawned CLIs run dist/ (production's compiled JavaScript): build it from the current sources.
    globalSetup: ['test/global-setup.ts'],
    // Integration tests start real servers on loopback; keep them from starving each other on 2 cores.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
