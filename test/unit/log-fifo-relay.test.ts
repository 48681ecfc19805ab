import { spawn } from 'node:child_process';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../stack/paths.js';
import { cliArgs } from '../support/relay-bin.js';
import { readToEnd, stdoutFifo } from '../support/stdout-fifo.js';

/** Fills the FIFO at `path` until it takes no more: the next write of anyone to it is held (log-pipe.ts). */
function fill(path: string): string {
  const fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  const filler = `${'x'.repeat(1023)}\n`;
  let written = '';
  try {
    for (;;) written += filler.slice(0, writeSync(fd, filler));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
  } finally {
    closeSync(fd);
  }
  return written;
}

/**
 * `outbox-relay run` with its stdout on a FIFO, the way a container runtime gives it (the integration tests' child
 * pipes are sockets), failing at once without any server: its HTTP port is taken
 * (CONFIG_INVALID, exit 2). `held`: the FIFO is full as the relay starts, and read only later, so that its lines are
 * held and written at its exit.
 */
async function runOnFifo(held: boolean): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  try {
    const port = (taken.address() as AddressInfo).port;
    const { path, reader, writer } = stdoutFifo();
    const filler = held ? fill(path) : '';
    const args = cliArgs(['run', '--postgres-url', 'postgres://u@127.0.0.1:9/x', '--kafka-brokers', '127.0.0.1:9', '--http-host', '127.0.0.1', '--http-port', String(port)]);
    const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', writer, 'pipe'] });
    closeSync(writer);
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    // Its lines wait in the hold meanwhile (at its exit for up to 5 s in which the reader takes nothing): whenever
    // the reading starts, they must all arrive.
    if (held) await Promise.race([exited, sleep(1500)]);
    const out = await readToEnd(reader);
    expect(out.startsWith(filler)).toBe(true);
    return { code: await exited, stdout: out.slice(filler.length), stderr };
  } finally {
    taken.close();
  }
}

describe('run with its stdout on a FIFO (a container runtime\'s)', () => {
  it.each([
    ['read as it comes', false],
    ['full as it starts, read only once it is exiting: its lines are held and written at the exit', true],
  ])('%s: exit 2 and its one error line, with code and fix, through the FIFO; nothing on stderr', async (_, held) => {
    const result = await runOnFifo(held);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toBe('');
    const lines = result.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ level: 'info', msg: 'starting outbox-relay' });
    const errors = lines.filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'CONFIG_INVALID', msg: 'cannot start the HTTP server', fix: expect.stringContaining('http') as unknown });
    expect(lines.some((l) => typeof l.msg === 'string' && l.msg.includes('dropped'))).toBe(false);
  }, 60_000);
});
