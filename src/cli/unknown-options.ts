import { CommanderError, type Command, type Option } from 'commander';
import { ConfigError } from '../config/load.js';
import { nearest } from '../edit-distance.js';
import { shownName } from '../shown-name.js';

const setAside = new WeakMap<Command, ConfigError[]>();

function maybeOption(arg: string | undefined): boolean {
  return arg !== undefined && arg.length > 1 && arg.startsWith('-');
}

/**
 * An unknown option as a refusal names it: without its value, which for a mistyped secret's flag is the secret
 * (`--postgres-urll=postgres://user:password@host`, `-psecret`). A long option is cut at '=' silently (that is how
 * a value is given), and before that at its first character no option's name has (shownName), with `note` saying
 * where: a value typed after another character (`--postgres-url:postgres://user:password@host`) was echoed whole.
 * A short option is its dash and one character, as commander reads one: what follows is its value, or more short
 * options.
 */
function optionName(arg: string): { flag: string; note: string } {
  if (!arg.startsWith('--')) return { flag: arg.slice(0, 2), note: '' };
  const { name, note } = shownName(arg.split('=', 1)[0]!.slice(2));
  return { flag: `--${name}`, note };
}

function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/**
 * The options commander reads for `command`: its own and, as options are not positional here, its parents' (the
 * program's --version and --help anywhere: `outbox-relay run --version` prints the version). Only the flags their
 * help lists, as commander does: a hidden one is a setting this command does not read.
 */
function readOptions(command: Command): Option[] {
  const listed: Option[] = [];
  for (let c: Command | null = command; c; c = c.parent) listed.push(...c.createHelp().visibleOptions(c));
  return listed;
}

/**
 * Commander reads `--json=true` as an unknown option `--json`, and `--version=1` as one named `--version=1`: a
 * switch (--json, --force, --version, --help…) given a value was told to mean itself, or was unknown.
 */
function switchGivenValue(listed: Option[], flag: string): ConfigError | undefined {
  if (!listed.some((option) => option.long === flag && !option.required && !option.optional)) return undefined;
  return new ConfigError(`option '${flag}' is a switch and takes no value`, `give ${flag} alone to turn it on, or leave it out`);
}

/** Commander's own wording, "(Did you mean …?)" included: scripts and docs quote it. */
function unknownOption(command: Command, { flag, note }: { flag: string; note: string }): ConfigError {
  const listed = readOptions(command);
  const refusal = switchGivenValue(listed, flag);
  if (refusal) return refusal;
  const visible = [...new Set(listed.flatMap((option) => (option.long ? [option.long.slice(2)] : [])))];
  const similar = flag.startsWith('--') ? nearest(flag.slice(2).replace(/…$/, ''), visible).map((name) => `--${name}`) : [];
  const suggestion = similar.length === 0 ? '' : similar.length === 1 ? ` (Did you mean ${similar[0]}?)` : ` (Did you mean one of ${similar.join(', ')}?)`;
  return new ConfigError(`unknown option '${flag}'${note}${suggestion}`, `see ${commandPath(command)} --help`);
}

/**
 * Commander ends a command's parse at its first unknown option: the options after it were not read, and that one
 * flag was reported alone. Here each unknown option is set aside with the value after it (every setting's flag
 * takes one) and the parse goes on, so the command reports them all with its settings' problems
 * (unknownOptions). A --help among them is left to commander, which prints the help.
 */
export function setAsideUnknownOptions(command: Command): void {
  const parse = command.parseOptions.bind(command);
  command.parseOptions = (args) => {
    const refused: ConfigError[] = [];
    setAside.set(command, refused);
    const operands: string[] = [];
    let rest = args;
    for (;;) {
      let parsed: ReturnType<typeof parse>;
      try {
        parsed = parse(rest);
      } catch (err) {
        // Commander stops at an option given last without its value (`… --bogus x --slot`) before this loop saw
        // the unknown options ahead of it in `rest`: they are set aside from the arguments before that option,
        // so that the usage error names them too (main.ts reads this same list once the error propagates).
        if (err instanceof CommanderError && err.code === 'commander.optionMissingArgument' && rest.length > 1) {
          try {
            command.parseOptions(rest.slice(0, -1));
          } catch {
            // Its own refusals add nothing to the one being thrown.
          }
          refused.push(...(setAside.get(command) ?? []));
          setAside.set(command, refused);
        }
        throw err;
      }
      operands.push(...parsed.operands);
      const [arg, ...after] = parsed.unknown;
      if (arg === undefined || arg === '--help' || arg === '-h') return { operands, unknown: parsed.unknown };
      refused.push(unknownOption(command, optionName(arg)));
      rest = !arg.includes('=') && !maybeOption(after[0]) ? after.slice(1) : after;
    }
  };
}

/** The code of a parse error whose refusal `command` set aside: usageError reports that refusal alone. */
export const SET_ASIDE_REFUSAL = 'outbox-relay.setAsideRefusal';

/**
 * The program and the command groups (slot, publication, config) leave an unknown option to commander when no
 * command of theirs follows, and commander names the argument whole: `outbox-relay --version=1` was "unknown
 * option '--version=1' (Did you mean --version?)", and `slot --postgres-urll=postgres://user:password@host` echoed
 * the password. A switch given a value is refused there as a command refuses one of its own (its fix with it);
 * any other unknown option keeps commander's refusal, of the option's name alone (optionName), as a command's.
 */
export function refuseUnknownOptions(command: Command): void {
  // Not in commander's typings: the method its parse calls with the first unknown option.
  const target = command as unknown as { unknownOption(flag: string): never };
  const unknown = target.unknownOption.bind(command);
  target.unknownOption = (arg) => {
    const { flag, note } = optionName(arg);
    const refusal = flag === arg ? undefined : switchGivenValue(readOptions(command), flag);
    if (refusal === undefined && note === '') return unknown(flag);
    // A cut name's refusal carries its note, which commander's wording has no place for.
    if (refusal === undefined) return command.error(unknownOption(command, { flag, note }).message, { code: 'commander.unknownOption' });
    setAside.set(command, [refusal]);
    return command.error(refusal.message, { code: SET_ASIDE_REFUSAL, exitCode: 2 });
  };
}

/**
 * A command, as an unknown command's refusal names it (shownName): commander echoed the argument whole, so a URL
 * given where a command goes (`outbox-relay postgres://user:password@host`) put its password on stderr and into
 * logs, as an unknown option's value did (optionName). The suggestion is commander's, made for the name shown.
 */
export function commandName(arg: string): string {
  const { name, note } = shownName(arg);
  return `'${name}'${note}`;
}

/** `command`'s refusal of an unknown command: named by commandName, with the nearest of its commands if one is near. */
export function refuseUnknownCommands(command: Command): void {
  // Not in commander's typings: the method its parse calls when the first operand names none of the commands.
  const target = command as unknown as { unknownCommand(): never };
  target.unknownCommand = () => {
    const arg = command.args[0] ?? '';
    const commands = command.createHelp().visibleCommands(command).map((c) => c.name());
    const similar = nearest(shownName(arg).name.replace(/…$/, ''), commands);
    const suggestion = similar.length === 0 ? '' : similar.length === 1 ? ` (Did you mean ${similar[0]}?)` : ` (Did you mean one of ${similar.join(', ')}?)`;
    return command.error(`unknown command ${commandName(arg)}${suggestion}`, { code: 'commander.unknownCommand' });
  };
}

/** The unknown options the last parse of `command` set aside, for the command's problems. */
export function unknownOptions(command: Command): ConfigError[] {
  return setAside.get(command) ?? [];
}
