import { rmSync } from 'node:fs';
import { processesMentioning, runDir } from './index.js';

/**
 * Run after the test suite with the same OUTBOX_STACK_RUN: fails when a postgres or java process of that run
 * is still alive. (npm test sets the variable for both.)
 */
if (!process.env.OUTBOX_STACK_RUN) {
  console.error('leak check: set OUTBOX_STACK_RUN to the run to check');
  process.exit(2);
}
const dir = runDir();
const leftovers = processesMentioning(dir);
if (leftovers.length > 0) {
  console.error(`leak check: ${leftovers.length} process(es) of the test stack still running:`);
  for (const p of leftovers) console.error(`  pid ${p.pid}: ${p.cmd.slice(0, 200)}`);
  process.exit(1);
}
console.log(`leak check: no postgres or java process of the test stack (${dir}) is left running`);
rmSync(dir, { recursive: true, force: true });
