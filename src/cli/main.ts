#!/usr/bin/env -S node --max-old-space-size=48 --max-semi-space-size=4
// The heap limits above keep a drain under 150 MB: unbounded, V8 grows its heap to 220+ MiB under the relay's
// allocation rate although the live data is far smaller (docs/benchmarks.md, "Memory"). `node dist/outbox-relay.js`
// skips the shebang: the image sets the same flags in NODE_OPTIONS.
import { Command, CommanderError } from 'commander';
import { configCommand } from './commands/config.js';
import { publicationCommand } from './commands/publication.js';
import { replayCommand } from './commands/replay.js';
import { republishCommand } from './commands/republish.js';
import { runCommand } from './commands/run.js';
import { setupCommand } from './commands/setup.js';
import { slotCommand } from './commands/slot.js';
import { statusCommand } from './commands/status.js';
import { VERSION } from '../instance.js';
import { EXIT } from './exit.js';

const program = new Command('outbox-relay')
  .description('Relays a PostgreSQL transactional outbox to Kafka from the WAL (logical replication, pgoutput).')
  .version(VERSION)
  .exitOverride()
  .showHelpAfterError('(add --help for usage)')
  .addCommand(runCommand())
  .addCommand(replayCommand())
  .addCommand(republishCommand())
  .addCommand(setupCommand())
  .addCommand(slotCommand())
  .addCommand(publicationCommand())
  .addCommand(statusCommand())
  .addCommand(configCommand());

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else {
    throw err;
  }
}
