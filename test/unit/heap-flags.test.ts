import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { shebangNodeFlags } from '../../stack/bin-flags.js';
import { repoRoot } from '../../stack/index.js';

/** The heap limits live in two places, the bin's shebang and the image's NODE_OPTIONS: they must agree. */
describe('heap flags', () => {
  const binFlags = shebangNodeFlags(join(repoRoot, 'src/cli/main.ts'));

  it('the bin caps the old and the young generation', () => {
    expect(binFlags.some((f) => /^--max-old-space-size=\d+$/.test(f))).toBe(true);
    expect(binFlags.some((f) => /^--max-semi-space-size=\d+$/.test(f))).toBe(true);
  });

  it("the image's NODE_OPTIONS are the bin's flags (the image runs `node dist/outbox-relay.js`, which skips the shebang)", () => {
    const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
    const nodeOptions = /^ENV NODE_OPTIONS="([^"]*)"$/m.exec(dockerfile)?.[1];
    expect(nodeOptions?.split(/\s+/)).toEqual(binFlags);
  });
});
