import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A FIFO (at `path`) for a child's stdout, as a container runtime gives one: `reader` (non-blocking) stays with the
 * test, `writer` is handed to the child (spawn's stdio) and closed by the test once it is spawned, so that the
 * reader sees the end when the child's copies close.
 */
export function stdoutFifo(): { path: string; reader: number; writer: number } {
  const fifo = join(mkdtempSync(join(tmpdir(), 'stdout-fifo-')), 'stdout');
  execFileSync('mkfifo', [fifo]);
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  return { path: fifo, reader, writer: openSync(fifo, constants.O_WRONLY) };
}

/** Everything `fd` (non-blocking) holds until its writers have all closed it; `fd` is closed then. */
export async function readToEnd(fd: number): Promise<string> {
  const chunks: Buffer[] = [];
  const buffer = Buffer.alloc(65_536);
  for (;;) {
    let read: number;
    try {
      read = readSync(fd, buffer);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      await sleep(5);
      continue;
    }
    if (read === 0) break;
    chunks.push(Buffer.from(buffer.subarray(0, read)));
  }
  closeSync(fd);
  return Buffer.concat(chunks).toString();
}
