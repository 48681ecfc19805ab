import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, mkdtempSync, readSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../stack/paths.js';
import { readToEnd, stdoutFifo } from '../support/stdout-fifo.js';

/** A command's log: 4 MiB of lines (the pipe takes 64 KiB, the log holds 1 MiB), a mark on stderr, its last line. */
const CHILD = `
import { createLogger } from ${JSON.stringify(join(repoRoot, 'src/logger.ts'))};
const logger = createLogger('info');
for (let i = 0; i < 14_000; i++) logger.info({ i, pad: 'x'.repeat(200) }, 'a line');
process.stderr.write('logged\\n');
logger.error({ code: 'INTERNAL' }, 'the last line');
process.exitCode = 1;
`;

/** CHILD's log as its reader got it: every line either there or counted in the one dropped line, the last line last. */
function expectHeldLog(log: string): void {
  const lines = log.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: string; msg: string; dropped?: number });
  const dropped = lines.filter((l) => l.msg.includes('log line(s) dropped'));
  expect(dropped).toHaveLength(1);
  expect(dropped[0]).toMatchObject({ level: 'warn', dropped: expect.any(Number) as unknown });
  expect(lines.filter((l) => l.msg === 'a line').length + dropped[0]!.dropped!).toBe(14_000);
  expect(lines.at(-1)).toMatchObject({ level: 'error', msg: 'the last line' });
}

/** `source` run as a child whose stdout is a FIFO not read yet: the child, and the FIFO's (non-blocking) reader. */
function spawnOnFifo(source: string, stdin: 'ignore' | 'pipe' = 'ignore'): { child: ChildProcess; reader: number } {
  const script = join(mkdtempSync(join(tmpdir(), 'log-fifo-')), 'command.mts');
  writeFileSync(script, source);
  const { reader, writer } = stdoutFifo();
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot, stdio: [stdin, writer, 'pipe'] });
  closeSync(writer);
  return { child, reader };
}

/** Once the child wrote `mark` to stderr. */
function said(child: ChildProcess, mark: string): Promise<void> {
  return new Promise((resolve) => child.stderr!.on('data', (chunk: Buffer) => chunk.toString().includes(mark) && resolve()));
}

describe('the log on a pipe whose reader stopped reading', () => {
  // Before: each line was written to stdout synchronously, and a write to a full pipe blocks until its reader
  // reads: with the reader open and not reading, the whole process stood still (timers late, the walsender's
  // keepalives unanswered), here at its first 64 KiB.
  // Before (not its own): the pipe could not be opened again (EACCES), as a container's stdout, created by the
  // runtime as root, mode 0600, cannot be by a relay running as another user (the image's USER 1000), and the log
  // fell back to the synchronous write: stood still as above.
  it.each([
    ['its own pipe', false],
    ['a pipe it may not open again (another user\'s)', true],
  ])('%s: goes on without waiting for the reader, drops the oldest held lines with a line counting them, and its last line is out once the pipe is read', async (_, foreign) => {
    const dir = mkdtempSync(join(tmpdir(), 'log-pipe-'));
    chmodSync(dir, 0o755);
    const script = join(dir, 'command.mts');
    writeFileSync(script, CHILD, { mode: 0o644 });
    // The reader is open (and stays so) but reads nothing until the child says it logged everything.
    const { path, reader, writer } = stdoutFifo();
    // Not the child's to open: no one's but root's (mode 000), and root's child runs as nobody.
    if (foreign) chmodSync(path, 0);
    const asNobody = foreign && process.getuid?.() === 0 ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : [];
    const [command, ...args] = [...asNobody, process.execPath, '--import', 'tsx', script];
    const child = spawn(command!, args, { cwd: repoRoot, stdio: ['ignore', writer, 'pipe'] });
    closeSync(writer);
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    let stderr = '';
    const logged = new Promise<boolean>((resolve) => {
      child.stderr!.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes('logged\n')) resolve(true);
      });
      // A bound for the run that blocks, so that it fails rather than hangs: the reader then reads, and it ends.
      setTimeout(() => resolve(false), 20_000).unref();
    });
    const wentOn = await logged;
    const log = await readToEnd(reader);
    expect(wentOn, stderr).toBe(true);
    expect(await exited).toBe(1);
    expectHeldLog(log);
  }, 60_000);
});

describe('the log on a socket whose reader stopped reading', () => {
  // Before: a socket (journald's, Node's child pipes) kept the synchronous write, and its reader's stall stopped the
  // process as a pipe's did.
  it('goes on without waiting for the reader, and its last line is out once the socket is read', async () => {
    const script = join(mkdtempSync(join(tmpdir(), 'log-socket-')), 'command.mts');
    writeFileSync(script, CHILD);
    // Node's child stdout is a socket (socketpair); not read until the child says it logged everything.
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.pause();
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const logged = new Promise<boolean>((resolve) => {
      child.stderr!.on('data', (chunk: Buffer) => chunk.toString().includes('logged') && resolve(true));
      setTimeout(() => resolve(false), 20_000).unref();
    });
    const wentOn = await logged;
    let stdout = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const read = new Promise((resolve) => child.stdout!.once('close', resolve));
    child.stdout!.resume();
    expect(wentOn).toBe(true);
    expect(await exited).toBe(1);
    await read;
    expectHeldLog(stdout);
  }, 60_000);
});

describe('the log held at the exit, its reader taking it slowly', () => {
  // Before: the wait at the exit was given up only after 5 s in which the reader took nothing, and a reader taking
  // a little at a time kept the process in it (1 MiB at 20 KiB/s: about a minute), the shutdown watchdog's and a
  // second signal's exit included, which must not wait: the 'exit' listener runs synchronously, nothing cuts it.
  it('is given up: the process ends without waiting for the reader to take it all', async () => {
    const { child, reader } = spawnOnFifo(CHILD);
    let exited = false;
    const exit = new Promise<number | null>((resolve) => child.on('exit', resolve));
    void exit.then(() => (exited = true));
    await said(child, 'logged');
    // 2 KiB every 100 ms (20 KiB/s), until the child is gone or 60 s have passed (a bound, so that it fails, not hangs).
    const buffer = Buffer.alloc(2048);
    let read = '';
    for (let turn = 0; !exited && turn < 600; turn++) {
      try {
        read += buffer.subarray(0, readSync(reader, buffer)).toString();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      }
      await sleep(100);
    }
    closeSync(reader);
    expect(exited).toBe(true);
    expect(await exit).toBe(1);
    // It ended with most of its held log still unread: it did not wait for the reader to take it.
    expect(read.length).toBeLessThan(512 * 1024);
  }, 90_000);
});

describe('the line counting dropped lines, the reader reading again while the process runs', () => {
  // Before: while the process ran, the line counting the dropped lines came only once the pipe had taken every
  // held line, after the newer lines that followed the gap (at the exit it came in their place).
  it('is written where the dropped lines were: between the line before them and the first one kept after them', async () => {
    // CHILD's lines, and then it stays up until its stdin ends: the held lines go out while it runs, not at its exit.
    const { child, reader } = spawnOnFifo(`${CHILD.slice(0, CHILD.indexOf('logger.error'))}process.stdin.resume();\n`, 'pipe');
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await said(child, 'logged');
    // Read until the newest line and the line counting the dropped ones are both out (bounded: fails, not hangs).
    const buffer = Buffer.alloc(65_536);
    let read = '';
    for (let turn = 0; !(read.includes('"i":13999,') && read.includes('log line(s) dropped')) && turn < 2000; turn++) {
      try {
        read += buffer.subarray(0, readSync(reader, buffer)).toString();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        await sleep(10);
      }
    }
    child.stdin!.end();
    read += await readToEnd(reader);
    expect(await exited).toBe(0);
    const lines = read.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; i?: number; dropped?: number });
    const at = lines.findIndex((l) => l.msg.includes('log line(s) dropped'));
    expect(at).toBeGreaterThan(0);
    expect(lines.filter((l) => l.msg.includes('log line(s) dropped'))).toHaveLength(1);
    const before = lines[at - 1]!.i!;
    const after = lines[at + 1]?.i;
    expect({ before, after }).toEqual({ before, after: before + lines[at]!.dropped! + 1 });
    expect(lines.filter((l) => l.msg === 'a line').length + lines[at]!.dropped!).toBe(14_000);
  }, 60_000);
});

/** A relay stopping: its log held (the reader stopped), a stop that never ends, so the watchdog's exit ends it. */
const STOPPING = `
import { createLogger } from ${JSON.stringify(join(repoRoot, 'src/logger.ts'))};
import { handleSignals } from ${JSON.stringify(join(repoRoot, 'src/cli/signals.ts'))};
const logger = createLogger('info');
for (let i = 0; i < 1_000; i++) logger.info({ i, pad: 'x'.repeat(200) }, 'a line');
handleSignals(logger, 0, () => new Promise(() => undefined));
setInterval(() => undefined, 1_000);
process.stderr.write('ready\\n');
`;

describe('the log held at the shutdown watchdog\'s exit, its reader stopped', () => {
  // Before: the exit waited up to 5 s for the reader after the watchdog's exit at shutdownGrace + 5 s: the process
  // was gone only at grace + 10 s, when docs/kubernetes.md's grace period (grace + 10 s) SIGKILLs it.
  it('is given up in time for the process to exit by itself (exit 1) before the orchestrator\'s SIGKILL 1.25 s after grace + 7.5 s', async () => {
    const { child, reader } = spawnOnFifo(STOPPING);
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (code, signal) => resolve([code, signal])));
    await said(child, 'ready');
    child.kill('SIGTERM');
    // The orchestrator (grace 0 here): its SIGKILL once the process outlived its bound by 1.25 s.
    const sigkill = setTimeout(() => child.kill('SIGKILL'), 8_750);
    const [code, signal] = await exited;
    clearTimeout(sigkill);
    closeSync(reader);
    expect({ code, signal }).toEqual({ code: 1, signal: null });
  }, 60_000);
});
