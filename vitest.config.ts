import { defineConfig } from 'vitest/config';
import InterleavingSequencer from './test/support/interleaving-sequencer.js';

export default defineConfig({
  test: {
    // Each integration file gets its own databases, slots and topics, so files may run side by side; two
    // workers suit the 2-core machines we run on, with PostgreSQL and the broker sharing the same cores.
    maxWorkers: 2,
    sequence: { sequencer: InterleavingSequencer },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          globalSetup: ['test/support/relay-bin-setup.ts'],
          // A few start the CLI in a child process: beside the integration files on two cores that took longer than
          // vitest's 5 s default. Tests with fakes finish far sooner either way.
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/support/relay-bin-setup.ts', 'test/support/global-setup.ts'],
          setupFiles: ['test/support/relay-logs-on-failure.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
