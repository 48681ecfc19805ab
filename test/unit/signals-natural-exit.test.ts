import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../stack/paths.js';

/**
 * A command as republish ends after its INTERRUPTED line: its stop-signal listener in place (onStopSignals), its
 * exit code set, then nothing left to wait for, so that the process ends by itself.
 */
const CHILD = `
import { onStopSignals } from ${JSON.stringify(join(repoRoot, 'src/cli/early-signals.ts'))};
onStopSignals(() => undefined);
process.exitCode = 3;
process.stdout.write('done\\n');
setTimeout(() => undefined, 50);
`;

/**
 * An operator command as it ends (ops-command.ts): its listener removed in `finally` once its result is printed and
 * its exit code set, its clients still closing (here a timer).
 */
const REMOVED = `
import { onStopSignals } from ${JSON.stringify(join(repoRoot, 'src/cli/early-signals.ts'))};
const remove = onStopSignals(() => undefined);
remove();
process.exitCode = 3;
process.stdout.write('done\\n');
setTimeout(() => undefined, 300);
`;

/** The child's exit code with a SIGINT sent at every turn of this process's loop from its 'done' to its exit. */
function exitUnderSignals(script: string): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  let flood: NodeJS.Timeout | undefined;
  child.stdout.once('data', () => (flood = setInterval(() => child.kill('SIGINT'), 0)));
  return new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      clearInterval(flood);
      resolve({ code, signal });
    }),
  );
}

describe('stop signals while a finished command ends by itself', () => {
  // Before: Node lets go of the signal listeners as it tears a process down whose loop is empty, and a signal then
  // met its default: exit by SIGINT (code null) where the command had set and reported its code.
  it('the process exits with the code the command set, never by the signal', async () => {
    const script = join(mkdtempSync(join(tmpdir(), 'signals-')), 'finished-command.mts');
    writeFileSync(script, CHILD);
    for (let run = 0; run < 3; run++) expect(await exitUnderSignals(script)).toEqual({ code: 3, signal: null });
  }, 60_000);

  // Before: removing the listener left none, and a signal met Node's default, exit by SIGINT, for a command that
  // had printed its result and set its code (after an INTERRUPTED line, exitSoonAfterClose's 2 s).
  it('a command whose listener was removed exits with the code it set, never by the signal', async () => {
    const script = join(mkdtempSync(join(tmpdir(), 'signals-')), 'removed-listener.mts');
    writeFileSync(script, REMOVED);
    expect(await exitUnderSignals(script)).toEqual({ code: 3, signal: null });
  }, 60_000);
});
