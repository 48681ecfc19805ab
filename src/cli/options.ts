import { Option, type Command } from 'commander';
import { SETTINGS, writtenValue, type Setting } from '../config/settings.js';
import { ConfigError, ConfigProblems, UnderFormerName, deprecationWarning, type RawValues } from '../config/load.js';
import { isLsn, parseLsn, type Lsn } from '../lsn.js';
import { COMMAND_SETTINGS, type CommandName } from './command-settings.js';
import { setAsideUnknownOptions, unknownOptions } from './unknown-options.js';

function attributeName(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** The default as help and the docs show it: written as config check shows the value (writtenValue). */
export function shownDefault(setting: Setting): string | undefined {
  if (setting.shownDefault !== undefined) return setting.shownDefault;
  return setting.default === undefined ? undefined : writtenValue(setting, setting.default);
}

/** The settings `command` reads (COMMAND_SETTINGS), in the settings table's order. */
function commandSettings(command: CommandName): Setting[] {
  const groups: readonly string[] = COMMAND_SETTINGS[command];
  return SETTINGS.filter((setting) => groups.includes(setting.group));
}

/**
 * Adds --config and one flag per setting. Help lists the settings the command reads, with the env var and the
 * default next to each; the other settings' flags are accepted but hidden, as the environment and a config file
 * may hold every setting: one set of flags (--postgres-url, --slot, --topic …) then serves every command. A
 * setting's former flag is accepted too, hidden (flagValues warns about it). An unknown option is reported with
 * the settings' problems (commandProblems).
 */
export function addSettingOptions(command: Command, name: CommandName): Command {
  setAsideUnknownOptions(command);
  command.option('-c, --config <path>', 'config file (YAML or JSON); env OUTBOX_RELAY_CONFIG');
  const read = new Set(commandSettings(name));
  for (const setting of SETTINGS) {
    const def = shownDefault(setting);
    const description = `${setting.doc} [env ${setting.env}${def !== undefined ? `; default ${def}` : ''}]`;
    command.addOption(new Option(`${setting.flag} ${setting.placeholder}`, description).hideHelp(!read.has(setting)));
    if (setting.deprecated?.flag) command.addOption(new Option(`${setting.deprecated.flag} ${setting.placeholder}`).hideHelp());
  }
  return command;
}

function writeWarning(line: string): void {
  process.stderr.write(`${line}\n`);
}

/**
 * The values given as flags, by setting key (strings; the settings' schemas convert them). A former flag name
 * counts with one warning line naming the current one; given both, the current one wins.
 */
export function flagValues(opts: Record<string, unknown>, warn: (line: string) => void = writeWarning): RawValues {
  const out: RawValues = {};
  for (const setting of SETTINGS) {
    const value = opts[attributeName(setting.flag)];
    const old = setting.deprecated?.flag;
    const oldValue = old === undefined ? undefined : opts[attributeName(old)];
    if (oldValue !== undefined) warn(deprecationWarning(setting, old!, setting.flag, value !== undefined));
    if (value !== undefined) out[setting.key] = value;
    else if (oldValue !== undefined) out[setting.key] = new UnderFormerName(old!, oldValue);
  }
  return out;
}

/** An LSN given as a command's flag or argument (`what`: replay's --to-lsn, slot advance's <lsn>). */
export function lsnValue(what: string, text: string): Lsn {
  if (!isLsn(text)) throw new ConfigError(`${what} ${JSON.stringify(text)} is not an LSN`, `correct ${what}: an LSN is two hexadecimal numbers, such as 0/16B3748`);
  return parseLsn(text);
}

/**
 * A commander parser (an option's argParser, an argument's) whose refusal waits for the settings: the ConfigError
 * `parse` throws is kept as the value, and the command reports it with the settings' problems (commandProblems).
 * Thrown to commander, it ended the parse, and the settings went unchecked until it was fixed.
 */
export function checkedWithSettings<T>(parse: (value: string) => T): (value: string) => T | ConfigError {
  return (value) => {
    try {
      return parse(value);
    } catch (err) {
      if (err instanceof ConfigError) return err;
      throw err;
    }
  };
}

/**
 * What commander's parse of `command` refused without ending it, for loadConfig's `problems`: its unknown options,
 * and the refusals checkedWithSettings kept among its option values and arguments.
 */
export function commandProblems(command: Command): ConfigProblems {
  const problems = new ConfigProblems();
  for (const refusal of unknownOptions(command)) problems.add(refusal);
  for (const value of [...Object.values(command.opts()), ...command.processedArgs]) if (value instanceof ConfigError) problems.add(value);
  return problems;
}
