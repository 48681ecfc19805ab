import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import YAML from 'yaml';
import { COMMAND_SETTINGS } from '../src/cli/command-settings.js';
import { shownDefault } from '../src/cli/options.js';
import { SETTINGS, writtenDefault, type Setting } from '../src/config/settings.js';
import { repoRoot } from '../stack/paths.js';

/**
 * `npm run docs:config` writes the configuration reference in docs/configuration.md and config/outbox-relay.example.yaml
 * from SETTINGS, so neither is maintained by hand; `-- --check` only reports whether they are current.
 */
export const README_PATH = join(repoRoot, 'README.md');
export const CONFIG_DOC_PATH = join(repoRoot, 'docs/configuration.md');
export const METRICS_DOC_PATH = join(repoRoot, 'docs/metrics.md');
export const EXAMPLE_PATH = join(repoRoot, 'config/outbox-relay.example.yaml');
export const CONFIG_SECTION = 'config-reference';
export const CLI_DOC_PATH = join(repoRoot, 'docs/cli.md');
export const COMMAND_SETTINGS_SECTION = 'command-settings';

/** `formerly --x / X_ENV, still accepted …` for a renamed setting, else ''. */
function formerNames(setting: Setting, quote = (name: string) => name): string {
  const names = [setting.deprecated?.flag, setting.deprecated?.env].filter((n) => n !== undefined).map(quote);
  return names.length ? `formerly ${names.join(' / ')}, still accepted with a deprecation warning` : '';
}

/** Values the example shows for settings without a default (or whose default depends on another setting); every such setting needs one. */
const EXAMPLES: Record<string, unknown> = {
  'postgres.url': 'postgres://relay@db.example.com:5432/app',
  'delivery.coalesce': '0ms',
  'postgres.passwordFile': '/run/secrets/postgres-password',
  'postgres.sslmode': 'verify-full',
  'postgres.sslCaFile': '/etc/ssl/certs/postgres-ca.pem',
  'mapping.key': 'aggregate_id',
  startLsn: '0/16B3748',
  replayWindow: '6h',
  routes: [{ type: 'Payment*', topic: 'payments' }, { aggregateType: 'customer', topic: 'crm.${event_type}' }],
  'filter.includeTypes': ['Order*', 'Payment*'],
  'filter.excludeTypes': ['*Internal'],
  'filter.includeAggregateTypes': ['order', 'payment'],
  'filter.excludeAggregateTypes': ['audit'],
  tables: [
    { table: 'sales.outbox', topic: 'sales.${aggregate_type}' },
    { table: 'billing.outbox', preset: 'debezium', routes: [{ type: 'Invoice*', topic: 'invoices' }], filter: { excludeTypes: ['*Draft'] } },
  ],
  'envelope.source': '/orders-service',
  'messages.prefixes': ['outbox'],
  'kafka.brokers': ['kafka-1:9092', 'kafka-2:9092'],
  'kafka.sslCaFile': '/etc/ssl/certs/kafka-ca.pem',
  'kafka.saslMechanism': 'scram-sha-512',
  'kafka.saslUsername': 'outbox-relay',
  'kafka.saslPassword': 'change-me',
  'kafka.saslPasswordFile': '/run/secrets/kafka-password',
  'kafka.clientRack': 'eu-west-1a',
  'kafka.producer': { 'queue.buffering.max.kbytes': 65536 },
};

function exampleValue(setting: Setting): unknown {
  const value = EXAMPLES[setting.key] ?? setting.shownDefault ?? writtenDefault(setting);
  if (value === undefined) throw new Error(`setting ${setting.key} has no default: add an example value to EXAMPLES in scripts/gen-config-docs.ts`);
  return value;
}

function yamlScalar(value: unknown): string {
  return YAML.stringify(value, { flowCollectionPadding: false, collectionStyle: 'flow', lineWidth: 0 }).trim();
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + word.length + 1 > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

/**
 * Every setting commented out with its default (or an example). Top-level explanations are `# text`; every
 * other line is YAML behind a single `#`, so removing that # from a setting and its section enables it.
 */
export function exampleConfig(): string {
  const out = [
    '# outbox-relay configuration file (outbox-relay run --config <file>, or OUTBOX_RELAY_CONFIG=<file>).',
    '# Generated from src/config/settings.ts by `npm run docs:config`: edit the settings there, not here.',
    '# Precedence: defaults < this file < environment variables < flags. Every setting below is commented out and',
    '# shows its default (or, where there is none, an example): to set one, remove the # in front of it and of its',
    '# section. Keep secrets out of this file: use postgres.passwordFile and kafka.saslPasswordFile.',
  ];
  const sections = new Map<string, Setting[]>();
  for (const setting of SETTINGS) {
    const section = setting.key.includes('.') ? setting.key.split('.')[0]! : '';
    sections.set(section, [...(sections.get(section) ?? []), setting]);
  }
  for (const [section, settings] of sections) {
    const indent = section ? '  ' : '';
    if (section) out.push('', `#${section}:`);
    for (const setting of settings) {
      const name = section ? setting.key.slice(section.length + 1) : setting.key;
      const former = formerNames(setting);
      const origin = `env ${setting.env}, flag ${setting.flag}${former ? `; ${former}` : ''}${setting.secret ? '; a secret, never logged' : ''}`;
      out.push(...(section ? [] : ['']), ...wrap(`${setting.doc} (${origin})`, 106).map((l) => (section ? `#${indent}# ${l}` : `# ${l}`)));
      out.push(`#${indent}${name}: ${yamlScalar(exampleValue(setting))}`);
    }
  }
  return `${out.join('\n')}\n`;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function configReference(): string {
  const rows = SETTINGS.map((s) => {
    const def = shownDefault(s);
    const shown = def === undefined ? '—' : `\`${def}\``;
    const former = formerNames(s, (name) => `\`${name}\``);
    return `| \`${s.key}\` | \`${s.flag}\` | \`${s.env}\` | ${shown} | ${cell(s.doc)}${s.clearable ? " A flag's `''` unsets it over the environment and the file." : ''}${s.secret ? ' Secret: never logged.' : ''}${former ? ` Renamed: ${former}.` : ''} |`;
  });
  return [
    '## Configuration reference',
    '',
    'Generated from `src/config/settings.ts` by `npm run docs:config`; a unit test fails when this table is out of date.',
    '',
    'Every setting has a key (in the config file, YAML or JSON, nested by the dots: `kafka: { brokers: … }`), an',
    'environment variable and a flag. Precedence: defaults < config file (`--config` / `OUTBOX_RELAY_CONFIG`) <',
    'environment < flags. An empty environment variable is unset, except for the mapping columns, where "" leaves the column out. An',
    '`OUTBOX_RELAY_*` variable that is neither a setting\'s nor `OUTBOX_RELAY_CONFIG` is ignored with a warning line naming the closest one',
    '(Kubernetes\' service links for a Service named `outbox-relay`, `OUTBOX_RELAY_SERVICE_HOST`, `OUTBOX_RELAY_SERVICE_PORT*` and',
    '`OUTBOX_RELAY_PORT*`, get none), and so is one of those variables written without `RELAY_` (`OUTBOX_KAFKA_BROKERS`). A Service named `outbox-relay-http`',
    'would set `OUTBOX_RELAY_HTTP_PORT=tcp://…`, which the relay refuses as `http.port` with a fix naming the Service link: set',
    '`enableServiceLinks: false` in the pod spec, as [`examples/kubernetes`](../examples/kubernetes) does. PostgreSQL also honours the standard `DATABASE_URL` and libpq `PG*` variables when',
    '`postgres.url` is not set. A value that does not validate stops the relay with exit code 2, naming the key and',
    'where the value came from; so does a config file that does not parse, naming its line, column and the kind of problem',
    '(`line 4, column 1: bad indentation`) but none of its text, which may hold a secret: quote a value that begins with a YAML',
    'indicator (`*` is an alias, `!` a tag, `&`, `@`, `` ` ``, `%`, `|`, `>`, `{`, `[`, quotes). What the YAML parser reads past (an unknown `!tag`) is a warning line, without the text either.',
    'An unknown key stops it too, named with the nearest setting, and only up to its first character outside `A-Z a-z 0-9 _ . -`:',
    'a line like `saslPassword hunter2:` puts the value in the key (`"kafka.saslPassword…" (cut at its first whitespace…)`).',
    'A duration needs its unit (`500ms`, `30s`, `5m`, `1h`, `1d`; only `0` may go without), a size may have one',
    '(`900KiB`, `64MiB`, `1GB`; a number alone is bytes). A comma-separated list (`filter.*`, `messages.prefixes`, `kafka.brokers`) may also be',
    'given as a JSON array in env and flags, whose entries are taken as written: a glob holding a comma, `\'["Order,Created"]\'`. [`config/outbox-relay.example.yaml`](../config/outbox-relay.example.yaml) shows every setting with its default.',
    '',
    '| Key | Flag | Environment | Default | Description |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}

/** docs/cli.md's table of the setting groups each command reads (its --help lists exactly their flags). */
export function commandSettingsReference(): string {
  const groups = new Map<string, Setting[]>();
  for (const setting of SETTINGS) groups.set(setting.group, [...(groups.get(setting.group) ?? []), setting]);
  return [
    'Generated from `src/cli/command-settings.ts` by `npm run docs:config`. A command\'s `--help` lists the flags of',
    'the setting groups it reads, and only those. Like the environment and a config file, the flags of the other',
    'settings are still accepted (hidden from `--help`) and otherwise ignored, so one set of flags can serve every',
    'command; their values are still validated, so a bad one is refused (exit 2) by every command but `health`, which',
    'resolves only its own (a probe must not fail on a setting it does not read) and exits 1 on every failure.',
    '',
    '| Command | Setting groups |',
    '| --- | --- |',
    ...Object.entries(COMMAND_SETTINGS).map(([command, names]) => `| \`${command}\` | ${names.join(', ')} |`),
    '',
    '| Group | Flags |',
    '| --- | --- |',
    ...[...groups].map(([group, settings]) => `| ${group} | ${settings.map((s) => `\`${s.flag}\``).join(' ')} |`),
  ].join('\n');
}

/** `text` with the body between `<!-- section:NAME:start -->` and its end marker replaced. */
export function replaceSection(text: string, name: string, body: string): string {
  const start = `<!-- section:${name}:start -->`;
  const end = `<!-- section:${name}:end -->`;
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from < 0 || to < from) throw new Error(`the document lacks the markers ${start} … ${end}`);
  return `${text.slice(0, from + start.length)}\n${body}\n${text.slice(to)}`;
}

export function sectionOf(text: string, name: string): string | undefined {
  const match = new RegExp(`<!-- section:${name}:start -->\\n([\\s\\S]*?)\\n?<!-- section:${name}:end -->`).exec(text);
  return match?.[1];
}

function main(check: boolean): number {
  const reference = readFileSync(CONFIG_DOC_PATH, 'utf8');
  const cli = readFileSync(CLI_DOC_PATH, 'utf8');
  const targets = [
    { path: CLI_DOC_PATH, current: cli, wanted: replaceSection(cli, COMMAND_SETTINGS_SECTION, commandSettingsReference()) },
    { path: CONFIG_DOC_PATH, current: reference, wanted: replaceSection(reference, CONFIG_SECTION, configReference()) },
    { path: EXAMPLE_PATH, current: existsSync(EXAMPLE_PATH) ? readFileSync(EXAMPLE_PATH, 'utf8') : '', wanted: exampleConfig() },
  ];
  let stale = 0;
  for (const { path, current, wanted } of targets) {
    if (current === wanted) continue;
    stale++;
    if (check) console.error(`${path} is out of date: run npm run docs:config`);
    else {
      writeFileSync(path, wanted);
      console.log(`wrote ${path}`);
    }
  }
  return check && stale > 0 ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.includes('--check'));
}
