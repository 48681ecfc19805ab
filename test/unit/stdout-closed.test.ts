import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../stack/paths.js';

/** `outbox-relay … | head -1`: the reader closes the pipe before the command wrote all of its output. */
describe('stdout closed by its reader (EPIPE)', () => {
  it('is not a crash: no INTERNAL "a defect" error with a stack on stderr, and the command keeps its own exit code', () => {
    // `true` exits at once: every write of the command to stdout meets a closed pipe.
    const main = join(repoRoot, 'src/cli/main.ts');
    const piped = (args: string) => spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" --import tsx "${main}" ${args} | true`], { cwd: repoRoot, encoding: 'utf8' });
    const version = piped('--version');
    expect(version.stderr).not.toMatch(/INTERNAL|EPIPE/);
    expect(version.status).toBe(0);
    const check = piped('config check --kafka-brokers 127.0.0.1:9 --json');
    expect(check.stderr).not.toMatch(/INTERNAL|EPIPE/);
    expect(check.status).toBe(0);
    // A failure keeps its exit code (health's 1, not a crash's).
    const health = piped('health --http-port 9 --json');
    expect(health.stderr).not.toMatch(/INTERNAL|EPIPE/);
    expect(health.status).toBe(1);
  });
});
