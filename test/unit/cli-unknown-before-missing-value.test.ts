import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../stack/paths.js';

function cli(args: string[]) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OUTBOX_RELAY_') && k !== 'DATABASE_URL'));
  return spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), ...args], { cwd: repoRoot, encoding: 'utf8', env: clean });
}

describe('an option given last without its value, after unknown options', () => {
  it('names the unknown options before it too, in the one error (before, only the missing value)', () => {
    const result = cli(['slot', 'list', '--bogus', 'x', '--postgres-pasword=secret', '--slot']);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/^outbox-relay: CONFIG_INVALID: 3 settings are invalid:\n/);
    expect(result.stderr).toContain("  - unknown option '--bogus'\n");
    expect(result.stderr).toContain("  - unknown option '--postgres-pasword'");
    expect(result.stderr).toContain("  - option '--slot <name>' argument missing");
    expect(result.stderr).not.toContain('secret');
  });
});
