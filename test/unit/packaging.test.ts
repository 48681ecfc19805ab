import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../stack/paths.js';

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string>; scripts: Record<string, string> };

describe('packaging: npx outbox-relay works after npm ci', () => {
  // One level below the package root, as dist/ is: the bundle reads ../package.json and resolves node_modules from there.
  const out = join(repoRoot, `.packaging-${process.pid}`);
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('npm ci builds the bin (prepare), and the build bundles src/cli/main.ts into it', () => {
    expect(pkg.bin['outbox-relay']).toBe('dist/outbox-relay.js');
    expect(pkg.scripts.prepare).toBe('npm run build');
    expect(pkg.scripts.build).toMatch(/&& node scripts\/build-bin\.mjs$/);
  });

  it('the bundle is one file that runs: the shebang with the heap flags, the version from package.json', () => {
    execFileSync(process.execPath, [join(repoRoot, 'scripts/build-bin.mjs'), '--outfile', join(out, 'outbox-relay.js')]);
    expect(readdirSync(out)).toEqual(['outbox-relay.js']);
    const bin = readFileSync(join(out, 'outbox-relay.js'), 'utf8');
    // The node shebang of src/cli/main.ts, with the heap flags the bin runs under.
    expect(bin.split('\n', 1)[0]).toBe(readFileSync(join(repoRoot, 'src/cli/main.ts'), 'utf8').split('\n', 1)[0]);
    expect(bin).toMatch(/^#!\/usr\/bin\/env (-S )?node( --[a-z-]+=\d+)+\n/);
    expect(execFileSync(process.execPath, [join(out, 'outbox-relay.js'), '--version'], { encoding: 'utf8' }).trim()).toBe(pkg.version);
  }, 60_000);
});
