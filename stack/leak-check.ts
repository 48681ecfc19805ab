import { processesMentioning, stackRoot } from './index.js';

/** Run after the test suite: fails when a postgres or java process started from our stack directory is still alive. */
const leftovers = processesMentioning(stackRoot());
if (leftovers.length > 0) {
  console.error(`leak check: ${leftovers.length} process(es) of the test stack still running:`);
  for (const p of leftovers) console.error(`  pid ${p.pid}: ${p.cmd.slice(0, 200)}`);
  process.exit(1);
}
console.log('leak check: no postgres or java process of the test stack is left running');
