import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A path for a command's `--config` that is a FIFO: the command blocks in its config read, while it is still
 * loading (before any signal handler of its own), until `signalWhileReadingConfig` writes the file.
 */
export function configFifo(): string {
  const fifo = join(mkdtempSync(join(tmpdir(), 'outbox-relay-config-')), 'outbox-relay.yaml');
  execFileSync('mkfifo', [fifo]);
  return fifo;
}

/** Waits until the command opened `fifo`, calls `signal` (the signal arrives in its config read, every time), then writes `content`. */
export async function signalWhileReadingConfig(fifo: string, signal: () => void, content: string): Promise<void> {
  // Opening a FIFO for writing waits for its reader.
  const file = await open(fifo, 'w');
  signal();
  // A command the signal ended closed its end: the write then fails, and its exit code says why.
  await file.writeFile(content).catch(() => undefined);
  await file.close().catch(() => undefined);
}
