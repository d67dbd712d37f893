import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests start real child processes and servers; two cores, so keep parallelism modest.
    pool: 'forks',
    maxWorkers: 2,
  },
});
