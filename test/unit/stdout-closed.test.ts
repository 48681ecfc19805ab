import { spawn, spawnSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
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

  // The log is on stdout, and with it the one error line of a failure: a run whose stdout was closed, or full,
  // exited 1 without it (and ENOSPC was a crash, INTERNAL). The log goes on on stderr, the failure's line included.
  it.each([
    ['closed by its reader (EPIPE)', '| true', 'EPIPE'],
    ['full (ENOSPC: /dev/full)', '> /dev/full', 'ENOSPC'],
  ])('stdout %s: run\'s log goes to stderr, with its failure\'s error line, code and fix', async (_, redirect, errno) => {
    // A port in use: run logs, then fails (exit 2) without any server to reach.
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as AddressInfo).port;
      const main = join(repoRoot, 'src/cli/main.ts');
      const child = spawn('bash', ['-c', `"${process.execPath}" --import tsx "${main}" run --postgres-url postgres://u@127.0.0.1:9/x --kafka-brokers 127.0.0.1:9 --http-host 127.0.0.1 --http-port ${port} ${redirect}; echo "exit $PIPESTATUS" >&2`], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      await new Promise((resolve) => child.on('close', resolve));
      const lines = stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.find((l) => l.msg === 'writing the log to stdout failed: the log goes to stderr from here')?.err, stderr).toMatch(errno);
      expect(lines.filter((l) => l.level === 'error').map((l) => [l.msg, l.code, typeof l.fix]), stderr).toEqual([['cannot start the HTTP server', 'CONFIG_INVALID', 'string']]);
      expect(stderr).toContain('exit 2');
    } finally {
      taken.close();
    }
  });

  // Writing the result to a full device was a crash: INTERNAL, "a defect", with a stack.
  it('stdout full (ENOSPC: /dev/full) for a command\'s result: OUTPUT_FAILED with its fix on stderr, exit 1, no stack', () => {
    const main = join(repoRoot, 'src/cli/main.ts');
    for (const args of ['config check --kafka-brokers 127.0.0.1:9 --json', '--help']) {
      const full = spawnSync('bash', ['-c', `"${process.execPath}" --import tsx "${main}" ${args} > /dev/full`], { cwd: repoRoot, encoding: 'utf8' });
      expect(full.stderr, args).toMatch(/^outbox-relay: OUTPUT_FAILED: writing the output failed: ENOSPC.*\n  fix: .*free space there, or send the output elsewhere\n$/);
      expect(full.status, args).toBe(1);
    }
  });
});
