import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../stack/paths.js';
import { cliArgs } from '../support/relay-bin.js';

/** The CLI (cliArgs), as a shell word list: the tests redirect its output in the shell. */
const CLI = [process.execPath, ...cliArgs([])].map((word) => `"${word}"`).join(' ');

/** `outbox-relay … | head -1`: the reader closes the pipe before the command wrote all of its output; `> /dev/full`: every write fails. */
describe('stdout or stderr closed by its reader (EPIPE) or full (ENOSPC)', () => {
  it('is not a crash: no INTERNAL "a defect" error with a stack on stderr, and the command keeps its own exit code', () => {
    // `true` exits at once: every write of the command to stdout meets a closed pipe.
    const piped = (args: string) => spawnSync('bash', ['-c', `set -o pipefail; ${CLI} ${args} | true`], { cwd: repoRoot, encoding: 'utf8' });
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
      const child = spawn('bash', ['-c', `${CLI} run --postgres-url postgres://u@127.0.0.1:9/x --kafka-brokers 127.0.0.1:9 --http-host 127.0.0.1 --http-port ${port} ${redirect}; echo "exit $PIPESTATUS" >&2`], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      await new Promise((resolve) => child.on('close', resolve));
      const lines = stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      // The line whose write failed (the first: the start-up line with the settings) once, then the switch.
      expect(lines.slice(0, 2).map((l) => [l.msg, l.settings === undefined]), stderr).toEqual([
        ['starting outbox-relay', false],
        ['writing the log to stdout failed: the log goes to stderr from here', true],
      ]);
      expect(lines.filter((l) => l.settings !== undefined)).toHaveLength(1);
      expect(lines[1]!.err, stderr).toMatch(errno);
      expect(lines.filter((l) => l.level === 'error').map((l) => [l.msg, l.code, typeof l.fix]), stderr).toEqual([['cannot start the HTTP server', 'CONFIG_INVALID', 'string']]);
      expect(stderr).toContain('exit 2');
    } finally {
      taken.close();
    }
  });

  // Writing the result to a full device was a crash: INTERNAL, "a defect", with a stack.
  it('stdout full (ENOSPC: /dev/full) for a command\'s result: OUTPUT_FAILED with its fix on stderr, exit 1, no stack', () => {
    for (const args of ['config check --kafka-brokers 127.0.0.1:9 --json', '--help']) {
      const full = spawnSync('bash', ['-c', `${CLI} ${args} > /dev/full`], { cwd: repoRoot, encoding: 'utf8' });
      expect(full.stderr, args).toMatch(/^outbox-relay: OUTPUT_FAILED: writing the output failed: ENOSPC.*\n  fix: .*free space there, or send the output elsewhere\n$/);
      expect(full.status, args).toBe(1);
    }
  });

  // The error document went to the full stdout, and so did the OUTPUT_FAILED one after it: nothing anywhere.
  it('stdout full (ENOSPC) for a --json error document: the document goes to stderr instead, with the error\'s own exit code', () => {
    const full = spawnSync('bash', ['-c', `${CLI} config check --json --delivery-guarantee nope --kafka-brokers 127.0.0.1:9 > /dev/full`], { cwd: repoRoot, encoding: 'utf8' });
    expect(JSON.parse(full.stderr)).toMatchObject({ error: { code: 'CONFIG_INVALID', message: expect.stringContaining('--delivery-guarantee') as unknown, fix: expect.any(String) as unknown } });
    expect(full.status).toBe(2);
  });

  // sonic-boom keeps a write that failed and retries it before each later one: with stderr failing too, every later
  // line stayed in memory for the life of the process.
  it('stdout and stderr both full: log lines are dropped, not kept (heap after 100k lines within 16 MB of before)', () => {
    const script = [
      `const { createLogger } = await import(${JSON.stringify(join(repoRoot, 'src/logger.ts'))});`,
      "const { writeFileSync } = await import('node:fs');",
      "const logger = createLogger('info');",
      "const padding = 'x'.repeat(300);",
      'logger.info({ padding }, "first");',
      'globalThis.gc(); const before = process.memoryUsage().heapUsed;',
      'for (let i = 0; i < 100000; i++) logger.info({ i, padding }, "line");',
      'globalThis.gc(); writeFileSync(process.env.RESULT, String(process.memoryUsage().heapUsed - before));',
    ].join('\n');
    const dir = mkdtempSync(join(tmpdir(), 'log-full-'));
    try {
      const result = join(dir, 'grown');
      const run = spawnSync('bash', ['-c', `"${process.execPath}" --expose-gc --import tsx --input-type=module -e "$SCRIPT" > /dev/full 2> /dev/full`], { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, SCRIPT: script, RESULT: result } });
      expect(run.status, run.stderr).toBe(0);
      const grownMiB = Number(readFileSync(result, 'utf8')) / 2 ** 20;
      expect(grownMiB).toBeLessThan(16);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // With --json (or on a terminal) the log is on stderr alone: a full stderr threw ENOSPC into the command at its
  // first log line, and a crash then ended with Node's exit 7 and no error document.
  it.each(['json', 'terminal'] as const)('stderr full in %s mode: the log lines are dropped and the command goes on', (mode) => {
    const script = [
      `const { commandLogger } = await import(${JSON.stringify(join(repoRoot, 'src/cli/command-output.ts'))});`,
      `const logger = commandLogger('info', '${mode}');`,
      'logger.info("first"); logger.info("second");',
      'process.stdout.write("went on\\n");',
    ].join('\n');
    const run = spawnSync('bash', ['-c', `"${process.execPath}" --import tsx --input-type=module -e "$SCRIPT" 2> /dev/full`], { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, SCRIPT: script } });
    expect(run.stdout).toBe('went on\n');
    expect(run.status).toBe(0);
  });
});
