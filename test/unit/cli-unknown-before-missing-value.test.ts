import { describe, expect, it } from 'vitest';
import { runCliSync } from '../support/cli.js';

describe('an option given last without its value, after unknown options', () => {
  it('names the unknown options before it too, in the one error (before, only the missing value)', () => {
    const result = runCliSync(['slot', 'list', '--bogus', 'x', '--postgres-pasword=secret', '--slot']);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/^outbox-relay: CONFIG_INVALID: 3 settings are invalid:\n/);
    expect(result.stderr).toContain("  - unknown option '--bogus'\n");
    expect(result.stderr).toContain("  - unknown option '--postgres-pasword'");
    expect(result.stderr).toContain("  - option '--slot <name>' argument missing");
    expect(result.stderr).not.toContain('secret');
  });
});
