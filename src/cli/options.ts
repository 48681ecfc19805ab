import { Option, type Command } from 'commander';
import { formatDuration, formatSize } from '../config/units.js';
import { SETTINGS, type Setting, type SettingGroup } from '../config/settings.js';
import type { RawValues } from '../config/load.js';

function attributeName(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function shownDefault(setting: Setting): string | undefined {
  if (setting.shownDefault) return setting.shownDefault;
  if (setting.default === undefined) return undefined;
  return String(setting.default);
}

/** Adds one flag per setting of `groups`; help shows the env var and the default next to each. */
export function addSettingOptions(command: Command, groups: SettingGroup[]): Command {
  command.option('-c, --config <path>', 'config file (YAML or JSON); env OUTBOX_RELAY_CONFIG');
  return addSettingFlags(command, (setting) => groups.includes(setting.group));
}

/** Flags for the settings `include` picks, for a command that needs a few settings beyond its groups. */
export function addSettingFlags(command: Command, include: (setting: Setting) => boolean): Command {
  for (const setting of SETTINGS) {
    if (!include(setting)) continue;
    const def = shownDefault(setting);
    const description = `${setting.doc} [env ${setting.env}${def !== undefined ? `; default ${def}` : ''}]`;
    command.addOption(new Option(`${setting.flag} ${setting.placeholder}`, description));
  }
  return command;
}

/** The values given as flags, by setting key (strings; the settings' schemas convert them). */
export function flagValues(opts: Record<string, unknown>): RawValues {
  const out: RawValues = {};
  for (const setting of SETTINGS) {
    const value = opts[attributeName(setting.flag)];
    if (value !== undefined) out[setting.key] = value;
  }
  return out;
}

export { formatDuration, formatSize };
