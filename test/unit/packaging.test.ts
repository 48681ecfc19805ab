import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../stack/paths.js';

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> };
const build = JSON.parse(readFileSync(join(repoRoot, 'tsconfig.build.json'), 'utf8')) as { compilerOptions: { rootDir: string; outDir: string } };

describe('packaging: npx outbox-relay works after npm ci', () => {
  it('the bin is what the build emits for src/cli/main.ts, and npm ci builds it (prepare)', () => {
    const { rootDir, outDir } = build.compilerOptions;
    const bin = pkg.bin['outbox-relay']!;
    expect(bin).toBe(`${outDir}/cli/main.js`);
    expect(existsSync(join(repoRoot, rootDir, 'cli/main.ts'))).toBe(true);
    // A node shebang, with the heap flags the bin runs under (see src/cli/main.ts).
    expect(readFileSync(join(repoRoot, rootDir, 'cli/main.ts'), 'utf8')).toMatch(/^#!\/usr\/bin\/env (-S )?node( --[a-z-]+=\d+)*\n/);
    expect(pkg.scripts.prepare).toBe('npm run build');
    expect(pkg.scripts.build).toBe('tsc -p tsconfig.build.json');
  });
});
