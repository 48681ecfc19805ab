import { join } from 'node:path';
import { inject } from 'vitest';
import { repoRoot } from '../../stack/index.js';

/**
 * How a test starts the real CLI: `node <relayBin> …`, the bundle each project's global setup builds from the source
 * at its start (relay-bin-setup.ts; scripts/build-bin.mjs, as `npm run build` builds the bin), or, outside vitest
 * (npm run faults), `node --import tsx src/cli/main.ts …`. tsx compiles the source at every start: on a slow 2-core
 * host `--help` took 0.8 s that way against 0.25–0.4 s from a bundle, and the suite starts the CLI some hundreds of
 * times.
 */
export function cliArgs(args: string[]): string[] {
  // Outside vitest (npm run faults) there is nothing to inject.
  const bin = process.env.VITEST ? inject('relayBin') : undefined;
  return bin ? [bin, ...args] : ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), ...args];
}
