import type { Command } from 'commander';
import type { EffectiveOrigin, RelayConfig, TableMapping } from '../../config/types.js';
import { ignoredStartSource } from '../../config/one-off-start.js';
import { loadConfig, redactedSettings } from '../../config/relay-config.js';
import { SETTINGS, writtenValue, type Setting } from '../../config/settings.js';
import { EXIT, reportError } from '../exit.js';
import { printJsonResult } from '../json-document.js';
import { addSettingOptions, commandProblems, flagValues } from '../options.js';
import { groupCommand } from './ops-command.js';
import { table, type Cell } from './output.js';

interface Effective {
  key: string;
  /** null: not set, and without a default (the setting's feature is off, or its value derived: docs/configuration.md). */
  value: unknown;
  source: string;
}

function sourceOf(setting: Setting, origin: EffectiveOrigin | undefined, file: string | undefined, formerName: string | undefined, config: RelayConfig): string {
  // A default that depends on other settings (delivery.coalesce on kafka.client) is not a value of its own.
  if (origin === undefined) return setting.shownDefault ? `unset (default ${setting.shownDefault})` : 'unset';
  if (origin === 'preset') return `preset ${String(config.values.preset)}`;
  if (origin === 'implied') return `implied by ${config.impliedBy[setting.key]}`;
  if (origin === 'flag') return `flag ${formerName ?? setting.flag}`;
  if (origin === 'env') return `env ${formerName ?? setting.env}`;
  if (origin === 'file') return `file ${file ?? '?'}`;
  return 'default';
}

/** A table as run reads it: its entry over the flat settings and its preset; columns the mapping leaves out are absent. */
function resolvedTable(mapping: TableMapping) {
  const { schema, table: name, columns, topic, routes, filter } = mapping;
  return { table: `${schema}.${name}`, topic, columns, routes: routes ?? [], filter: filter ?? {} };
}

function tableCells(t: ReturnType<typeof resolvedTable>): Cell[] {
  const columns = Object.entries(t.columns).filter(([, column]) => column !== undefined);
  const rules = [...(t.routes.length > 0 ? [`routes ${JSON.stringify(t.routes)}`] : []), ...(Object.keys(t.filter).length > 0 ? [`filter ${JSON.stringify(t.filter)}`] : [])];
  return [t.table, t.topic, columns.map(([field, column]) => `${field}=${column}`).join(' '), rules.length > 0 ? rules.join(' ') : '-'];
}

/**
 * `config check`: the layered configuration as `run` would resolve it, validated (every problem at once, exit 2),
 * then printed with secrets masked and the source of each value, so "which value wins?" needs no guessing. Every
 * setting is listed, the unset ones too: what was left out shows as plainly as what was given.
 */
function checkCommand(): Command {
  const command = groupCommand('check', 'Validate the configuration and print the effective value of every setting, secrets masked, with where it came from (flag, env, file, preset, another setting that implies it, or default); with tables, a second section, "tables as run reads them": each table\'s topic, columns, routes and filter, its entry over the flat settings and its preset (--json: tables, the one table without tables). Exits 2 listing every problem.', [
    'outbox-relay config check --config /etc/outbox-relay.yaml',
    'OUTBOX_RELAY_KAFKA_BROKERS=kafka:9092 outbox-relay config check --json',
  ]);
  command.option('--json', 'print one JSON document for scripts instead of text');
  addSettingOptions(command, 'config check');
  return command.action((opts: Record<string, unknown>) => {
    const json = opts.json === true;
    let config;
    try {
      // What run requires and refuses too (the window against the heap this process has: the same bin flags or
      // NODE_OPTIONS): a configuration check passes only what run would start with.
      config = loadConfig({ flags: flagValues(opts), configFile: opts.config as string | undefined, required: ['kafka.brokers'], inFlightWindow: true, producing: true, problems: commandProblems(command) });
    } catch (err) {
      process.exitCode = reportError(err, json);
      return;
    }
    const file = (opts.config as string | undefined) ?? process.env.OUTBOX_RELAY_CONFIG;
    const values = redactedSettings(config);
    // Values run does not use: shown unset, with where they came from and why. run drops a start position it was
    // not given as a flag (withoutPersistentStart); with `tables`, each entry names its table, and the single
    // table's default applies to none (tableMappings refuses `table` set beside `tables`); the password file's
    // content replaces kafka.saslPassword (saslOptions), as postgres.passwordFile's replaces the URL's password.
    const ignored: Record<string, string> = {
      ...(ignoredStartSource(config) !== undefined && { startLsn: 'run takes a start position only as --start-lsn' }),
      ...(config.values.tables !== undefined && { table: 'tables lists the tables' }),
      ...(config.values['kafka.saslPasswordFile'] !== undefined && config.values['kafka.saslPassword'] !== undefined && { 'kafka.saslPassword': 'kafka.saslPasswordFile replaces it' }),
    };
    const listed = SETTINGS.map((setting) => {
      const given = setting.key in values;
      const why = ignored[setting.key];
      const source = sourceOf(setting, given ? (config.origins[setting.key] ?? 'default') : undefined, file, config.formerNames[setting.key], config);
      const effective: Effective = {
        key: setting.key,
        value: given && !why ? values[setting.key] : null,
        source: why ? `${source} (ignored: ${why})` : source,
      };
      return { effective, shown: given && !why ? writtenValue(setting, effective.value) : '-' };
    });
    const tables = config.tables.map(resolvedTable);
    if (json) printJsonResult({ valid: true, settings: listed.map((l) => l.effective), tables });
    else {
      const settings = table(['SETTING', 'VALUE', 'SOURCE'], listed.map(({ effective, shown }) => [effective.key, shown, effective.source]));
      // The flat settings are the single table's mapping; `tables` rows are as written, each over those settings.
      const resolved = config.values.tables === undefined ? '' : `\n\ntables as run reads them:\n${table(['TABLE', 'TOPIC', 'COLUMNS', 'ROUTES AND FILTER'], tables.map(tableCells))}`;
      process.stdout.write(`configuration is valid\n\n${settings}${resolved}\n`);
    }
    process.exitCode = EXIT.ok;
  });
}

export function configCommand(): Command {
  return groupCommand('config', 'Inspect the configuration: config check validates it and shows the effective values.', ['outbox-relay config check']).addCommand(checkCommand());
}
