#!/usr/bin/env -S node --max-old-space-size=48 --max-semi-space-size=4
// The heap limits above keep a drain under 150 MB: unbounded, V8 grows its heap to 220+ MiB under the relay's
// allocation rate although the live data is far smaller (docs/benchmarks.md: "Memory, before the caps" and the peak-RSS target). `node dist/outbox-relay.js`
// skips the shebang: the image sets the same flags in NODE_OPTIONS.
// First: its listeners must be in place before the rest of the bin is evaluated.
import './early-signals.js';
import { Command, CommanderError } from 'commander';
import { configCommand } from './commands/config.js';
import { healthCommand } from './commands/health.js';
import { publicationCommand } from './commands/publication.js';
import { replayCommand } from './commands/replay.js';
import { republishCommand } from './commands/republish.js';
import { runCommand } from './commands/run.js';
import { setupCommand } from './commands/setup.js';
import { slotCommand } from './commands/slot.js';
import { statusCommand } from './commands/status.js';
import { ConfigError, ConfigProblems } from '../config/load.js';
import type { RelayError } from '../errors.js';
import { VERSION } from '../instance.js';
import { reportCrashes } from './crashes.js';
import { commandName, refuseUnknownCommands, refuseUnknownOptions, SET_ASIDE_REFUSAL, unknownOptions } from './unknown-options.js';
import { EXIT, reportError } from './exit.js';

reportCrashes();

const program = new Command('outbox-relay')
  .description('Relays a PostgreSQL transactional outbox to Kafka from the WAL (logical replication, pgoutput).')
  .version(VERSION)
  .exitOverride()
  .addCommand(runCommand())
  .addCommand(replayCommand())
  .addCommand(republishCommand())
  .addCommand(setupCommand())
  .addCommand(slotCommand())
  .addCommand(publicationCommand())
  .addCommand(statusCommand())
  .addCommand(configCommand())
  .addCommand(healthCommand());

/** The command whose parsing failed, named in the fix of the usage error reported for it. */
let failedCommand = program.name();
/** That command itself: `help <topic>` is looked up among its subcommands. */
let failedCommandObject: Command = program;
/** Its unknown options, set aside before commander stopped (a required argument taken as one's value). */
let setAsideOptions: ConfigError[] = [];

/**
 * Commander prints a parse error as its own line, without a code or a fix; every command records instead that
 * it failed, and the error is reported below like any other. Help written for an error (a command group called
 * without its subcommand) is still printed.
 */
function recordParseErrors(command: Command, path: string): void {
  const failed = () => {
    failedCommand = path;
    failedCommandObject = command;
    setAsideOptions = unknownOptions(command);
  };
  command.configureOutput({
    outputError: failed,
    writeErr: (text) => {
      failed();
      process.stderr.write(text);
    },
  });
  if (command.commands.length > 0) {
    refuseUnknownOptions(command);
    refuseUnknownCommands(command);
  }
  for (const sub of command.commands) recordParseErrors(sub, `${path} ${sub.name()}`);
}
recordParseErrors(program, program.name());

// `help help` (or `slot help help`): commander looks for a command named help, finds none (its own help command
// is not among them) and fails as if no command had been given. The help of help is the help of the command above.
const helpAt = process.argv.indexOf('help', 2);
const argv = helpAt > 0 && process.argv[helpAt + 1] === 'help' ? process.argv.filter((_, i) => i !== helpAt + 1) : process.argv;

/**
 * `help nosuch` (or `slot help nosuch`): the word after `help` when it names none of the commands of the command
 * whose help it asked for. Commander prints that command's help and fails as if no command had been given.
 */
function unknownHelpTopic(): string | undefined {
  const topic = argv[helpAt + 1];
  if (helpAt < 0 || topic === undefined || topic.startsWith('-')) return undefined;
  return failedCommandObject.commands.some((c) => c.name() === topic || c.aliases().includes(topic)) ? undefined : topic;
}

function usageError(err: CommanderError): RelayError {
  const topic = err.code === 'commander.help' ? unknownHelpTopic() : undefined;
  const message =
    topic !== undefined ? `unknown command ${commandName(topic)} (the commands are listed above)`
    : err.code === 'commander.help' ? `${failedCommand} needs a command (listed above)`
    : err.message.replace(/^error: /, '').replaceAll('\n', ' ');
  const problems = new ConfigProblems();
  for (const refusal of setAsideOptions) problems.add(refusal);
  // A refusal of ours raised through commander is the error whole: its message is the refusal's, which is set aside.
  if (err.code !== SET_ASIDE_REFUSAL) problems.add(new ConfigError(message, `see ${failedCommand} --help`));
  return problems.combined()!;
}

try {
  await program.parseAsync(argv);
} catch (err) {
  if (!(err instanceof CommanderError)) process.exitCode = reportError(err);
  // Commander stops before the command's action reads --json: a script that asked for it gets the error object still.
  // health exits 0 or 1 only, its usage errors too: Docker's HEALTHCHECK reserves 2 (docs/cli.md).
  else if (err.exitCode === 0) process.exitCode = EXIT.ok;
  else {
    const code = reportError(usageError(err), process.argv.includes('--json'));
    process.exitCode = failedCommand === `${program.name()} health` ? EXIT.runtime : code;
  }
}
