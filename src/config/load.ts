import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { RelayError } from '../errors.js';
import { editDistance, nearest } from '../edit-distance.js';
import { shownName } from '../shown-name.js';
import { parseConfigText, type SyntaxFault } from './file-syntax.js';
import { SETTINGS, SETTINGS_BY_KEY, type Setting, type SettingValues } from './settings.js';
import type { Origin } from './types.js';

/** Raw values by setting key, before validation. */
export type RawValues = Record<string, unknown>;

export class ConfigError extends RelayError {
  /** The problems a combined error stands for (ConfigProblems.combined): the ConfigProblems it reaches lists each. */
  readonly parts: readonly RelayError[];

  constructor(message: string, hint?: string, parts: readonly RelayError[] = []) {
    super('CONFIG_INVALID', message, hint === undefined ? {} : { hint });
    this.parts = parts;
  }
}

/**
 * A value a layer holds under the setting's former flag or variable (--from-lsn, OUTBOX_RELAY_DELIVERY): messages
 * name what the operator set, not the current name, which a search of the manifest would not find.
 */
export class UnderFormerName {
  constructor(
    readonly name: string,
    readonly value: unknown,
  ) {}
}

/**
 * Where a value came from, as a message names it: `flag --x`, `environment variable X`, `key "x" in <file>`;
 * `formerName` when it was given under that (UnderFormerName).
 */
export function describeOrigin(setting: Setting, origin: Origin, file: string | undefined, formerName?: string): string {
  switch (origin) {
    case 'flag':
      return `flag ${formerName ?? setting.flag}`;
    case 'env':
      return `environment variable ${formerName ?? setting.env}`;
    case 'file':
      return `key "${setting.key}" in ${file}`;
    default:
      return `default of ${setting.key}`;
  }
}

/** Flattens `{ kafka: { brokers: … } }` into `{ 'kafka.brokers': … }`, collecting the keys that are not settings in `unknown`. */
function flattenFile(value: unknown, file: string, unknown: string[], prefix = ''): RawValues {
  const out: RawValues = {};
  if (value === null || value === undefined) return out;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`${file}: expected a mapping of settings at "${prefix || 'top level'}"`, 'write the settings as keys with values (config/outbox-relay.example.yaml shows every key)');
  }
  for (const [name, child] of Object.entries(value as Record<string, unknown>)) {
    const key = prefix ? `${prefix}.${name}` : name;
    if (SETTINGS_BY_KEY.has(key)) out[key] = child;
    else if (child !== null && typeof child === 'object' && !Array.isArray(child) && SETTINGS.some((s) => s.key.startsWith(`${key}.`))) Object.assign(out, flattenFile(child, file, unknown, key));
    else unknown.push(key);
  }
  return out;
}

/** A password such as `*x9` or `!x9` is YAML syntax (an alias, a tag) unless quoted. */
const QUOTE_YAML = 'quote a value that begins with * & ! @ ` % | > { [ \' " or holds ": " or " #"';

/** `line 3, column 7` of a syntax fault, or nothing when the parser gave no position. */
function where(fault: SyntaxFault): string {
  return fault.line === undefined ? '' : `line ${fault.line}, column ${fault.column}: `;
}

/**
 * The file's settings, flattened; `unknown`: its keys that are not settings, reported with the other problems.
 * A file that does not parse is named with the line, column and kind of problem, never its text (parseConfigText):
 * the parsers quoted the line at fault, often the one holding a password, into the error and the logs.
 */
export function readConfigFile(file: string, warn: (line: string) => void): { values: RawValues; unknown: string[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`, 'check the path given to --config / OUTBOX_RELAY_CONFIG');
  }
  const json = extname(file) === '.json';
  const parsed = parseConfigText(text, json, (fault) => warn(`warning: config file ${file}: ${where(fault)}${fault.problem}, read past it (${QUOTE_YAML})`));
  if (parsed.fault) {
    const { fault } = parsed;
    throw new ConfigError(
      `config file ${file} is not valid ${json ? 'JSON' : 'YAML'}: ${where(fault)}${fault.problem}; its text is not shown, as it may hold secrets`,
      `correct the file${fault.line === undefined ? '' : ` at line ${fault.line}, column ${fault.column}`} (${json ? 'keys and strings in double quotes' : QUOTE_YAML}; config/outbox-relay.example.yaml shows every key), or point --config / OUTBOX_RELAY_CONFIG at another`,
    );
  }
  const unknown: string[] = [];
  return { values: flattenFile(parsed.value, file, unknown), unknown };
}

/**
 * The file's unknown keys, each named without what may be a value typed into it (shownName: `password hunter2:`
 * echoed the password) and with the nearest setting, if one is near.
 */
function unknownKeys(file: string, unknown: string[]): ConfigError {
  const keys = unknown.map(shownName);
  const names = keys.map(({ name, note }) => {
    const near = nearest(name.replace(/…$/, ''), SETTINGS.map((s) => s.key));
    return `"${name}"${note}${near.length === 0 ? '' : ` (did you mean ${near.join(' or ')}?)`}`;
  });
  const cut = keys.some(({ note }) => note !== '') ? '; write each setting as "key: value" (a space or "=" before the colon makes the value part of the key)' : '';
  return new ConfigError(`${file}: unknown setting${unknown.length > 1 ? 's' : ''} ${names.join(', ')}`, `see config/outbox-relay.example.yaml or docs/configuration.md for the valid keys${cut}`);
}

/** One line saying that `used` is a former name of the setting and what to use instead. */
export function deprecationWarning(setting: Setting, used: string, current: string, bothGiven: boolean): string {
  return `warning: ${used} is deprecated, use ${current} (setting ${setting.key})${bothGiven ? `; ${current} is also given and wins` : ''}`;
}

/** What the relay reads of the environment besides the settings' variables (current and former). */
const OTHER_ENV = ['OUTBOX_RELAY_CONFIG'];

/**
 * What Kubernetes injects into a pod for a Service named outbox-relay (service links): OUTBOX_RELAY_SERVICE_HOST,
 * OUTBOX_RELAY_SERVICE_PORT[_<port name>], OUTBOX_RELAY_PORT[_<port>_<protocol>[_PROTO|_PORT|_ADDR]]. Not the
 * operator's: no warning.
 */
const SERVICE_LINK = /^OUTBOX_RELAY_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_\d+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)?)$/;

/**
 * One line for an OUTBOX_RELAY_* variable the relay does not read, naming the closest one it does: a mistyped
 * variable was ignored without a word (an unknown config-file key is refused). A warning only, as the
 * environment also holds variables not meant for the relay.
 */
function unknownVariableWarning(name: string, meant?: string): string {
  const known = [...SETTINGS.map((s) => s.env), ...OTHER_ENV];
  const closest = meant ?? known.map((candidate) => [candidate, editDistance(name, candidate)] as const).sort((a, b) => a[1] - b[1])[0]![0];
  const setting = SETTINGS.find((s) => s.env === closest);
  return `warning: environment variable ${name} is not read by outbox-relay and is ignored; did you mean ${closest}${setting ? ` (setting ${setting.key})` : ''}?`;
}

/**
 * Settings from the environment; a setting's former variable counts, with one warning line naming the current one.
 * Any other OUTBOX_RELAY_* variable gets a warning line too (unknownVariableWarning), and so does one that is a
 * read variable without its RELAY_ (OUTBOX_KAFKA_BROKERS): such a name was ignored without a word, and the relay
 * then failed on a setting that looked set (kafka.brokers missing, or PostgreSQL's "no user name specified").
 * An empty variable is unset (a manifest's `VAR=` or `\${VAR:-}`), except for a setting whose value may be "" (a
 * mapping column, where "" leaves it out): OUTBOX_RELAY_MAPPING_HEADERS= was ignored, the default column mapped.
 */
export function readEnv(env: NodeJS.ProcessEnv, warn: (line: string) => void): RawValues {
  const out: RawValues = {};
  for (const setting of SETTINGS) {
    // Only the mapping columns: for kafka.producer "" is {} too, and an empty variable outranking the file would
    // drop the file's librdkafka properties.
    const emptyCounts = setting.group === 'mapping' && setting.schema.safeParse('').success;
    const given = (name: string | undefined) => (name === undefined || (env[name] === '' && !emptyCounts) ? undefined : env[name]);
    const value = given(setting.env);
    const old = setting.deprecated?.env;
    const oldValue = given(old);
    if (oldValue !== undefined) warn(deprecationWarning(setting, old!, setting.env, value !== undefined));
    if (value !== undefined) out[setting.key] = value;
    else if (oldValue !== undefined) out[setting.key] = new UnderFormerName(old!, oldValue);
  }
  const read = new Set([...SETTINGS.flatMap((s) => [s.env, s.deprecated?.env]), ...OTHER_ENV]);
  for (const name of Object.keys(env)) {
    if (name.startsWith('OUTBOX_RELAY_') && !read.has(name) && !SERVICE_LINK.test(name)) warn(unknownVariableWarning(name));
    const meant = `OUTBOX_RELAY_${name.slice('OUTBOX_'.length)}`;
    // A former name's current one (OUTBOX_DELIVERY: OUTBOX_RELAY_DELIVERY_GUARANTEE).
    if (name.startsWith('OUTBOX_') && !name.startsWith('OUTBOX_RELAY_') && read.has(meant)) warn(unknownVariableWarning(name, SETTINGS.find((s) => s.deprecated?.env === meant)?.env ?? meant));
  }
  return out;
}

export interface Resolved {
  values: Record<string, unknown>;
  origins: Record<string, Origin>;
  /** The former flag or variable a value was given under, by setting key (UnderFormerName). */
  formerNames: Record<string, string>;
  /**
   * The settings whose value failed its schema, or is not known (a config file that could not be read may set
   * it): absent from `values` (readValid refuses to read them).
   */
  invalid: Set<string>;
}

/**
 * The value Kubernetes gives `<SERVICE>_PORT` in every pod of a Service's namespace (service links): a Service named
 * outbox-relay-http sets OUTBOX_RELAY_HTTP_PORT=tcp://10.0.0.1:9090, which the relay reads as http.port. The fix
 * names that cause: "correct the environment variable" sent the operator looking for a line their manifest lacks.
 */
const SERVICE_LINK_VALUE = /^(tcp|udp|sctp):\/\/\S+:\d+$/;

function serviceLinkFix(setting: Setting, origin: Origin, raw: unknown): string | undefined {
  if (origin !== 'env' || typeof raw !== 'string' || !SERVICE_LINK_VALUE.test(raw) || !setting.env.endsWith('_PORT')) return undefined;
  const service = setting.env.slice(0, -'_PORT'.length).toLowerCase().replace(/_/g, '-');
  return `Kubernetes sets ${setting.env} to this address for a Service named ${service} (service links): set enableServiceLinks: false in the pod spec, or set ${setting.env} in the container's env (setting ${setting.key}), which wins over the Service's`;
}

/** zod's own messages ("Invalid input: expected string, …") follow our "expected": drop their repeated clause. */
function expectation(message: string): string {
  return message.replace(/^(Invalid input|Too small|Too big): /, '').replace(/^expected /, '');
}

/** A password in a URL of a value echoed as invalid (relayUrl: `http://user:password@host`), masked. */
function withoutUserInfo(text: string): string {
  return text.replace(/(\/\/[^\s/:@"]*:)[^\s/@"]*@/g, '$1***@');
}

/** Thrown by readValid's values when a check reads a setting that failed its schema: ConfigProblems.check skips that check. */
class InvalidSetting extends Error {}

/**
 * The values as the checks across settings read them: reading a setting whose value failed its schema ends the
 * check that reads it, without a finding (what it would say is about a value already refused, and the value is
 * not there to check). The checks that read only valid settings still run, so that their refusals come in the
 * same error as the invalid values: before, those came a round later, once the values were fixed.
 */
export function readValid(resolved: Resolved): Record<string, unknown> {
  return new Proxy(resolved.values, {
    get(values, key) {
      if (typeof key === 'string' && resolved.invalid.has(key)) throw new InvalidSetting(key);
      return values[key as string];
    },
  });
}

/**
 * The refusals of the settings' values (resolveSettings) and of the checks across settings (relay-config.ts), kept
 * so that they are reported together, in one error, rather than one per start.
 */
export class ConfigProblems {
  private readonly found: RelayError[] = [];

  /** A combined error's problems are added each as its own: one list, not a list nested in an entry. */
  add(error: RelayError): void {
    if (error instanceof ConfigError && error.parts.length > 0) this.found.push(...error.parts);
    else this.found.push(error);
  }

  /**
   * `check`'s result; a configuration error it throws is kept (undefined then), as is a check that read an invalid
   * setting (readValid) skipped; anything else passes through.
   */
  check<T>(check: () => T): T | undefined {
    try {
      return check();
    } catch (err) {
      if (err instanceof InvalidSetting) return undefined;
      if (!(err instanceof RelayError) || err.code !== 'CONFIG_INVALID') throw err;
      this.add(err);
      return undefined;
    }
  }

  /** Every problem at once, so a config takes one fix-and-retry round rather than one per mistake. */
  throwIfAny(): void {
    const error = this.combined();
    if (error) throw error;
  }

  /** The problems as one error (the only one as it is); undefined if there is none. */
  combined(): RelayError | undefined {
    const found = this.found;
    if (found.length <= 1) return found[0];
    // A fix shared by several problems (see … --help, for each unknown option) is given once.
    return new ConfigError(`${found.length} settings are invalid:\n${found.map((e) => `  - ${e.message}`).join('\n')}`, [...new Set(found.map((e) => e.hint ?? ''))].join('; '), found);
  }
}

/**
 * defaults < config file < environment < flags, each value of `settings` (all, or the few a command reads)
 * validated by its setting's schema. Bad values and missing `required` settings go to `problems`, each with the
 * key, where it came from and what is allowed: the caller reports them with the refusals of its checks across
 * settings, which run on the valid values meanwhile.
 * `fileUnread`: the config file could not be read (its own problem is already in `problems`); the environment's
 * and the flags' values are still checked, as they win over the file, and the settings they leave to it are not
 * known: neither checked nor reported missing.
 */
export function resolveSettings(
  layers: { file?: RawValues; fileName?: string; fileUnread?: boolean; unknownFileKeys?: string[]; env: RawValues; flags: RawValues; required?: string[] },
  problems: ConfigProblems,
  settings: readonly Setting[] = SETTINGS,
): Resolved {
  const values: Record<string, unknown> = {};
  const origins: Record<string, Origin> = {};
  const formerNames: Record<string, string> = {};
  const invalid = new Set<string>();
  if (layers.unknownFileKeys?.length) problems.add(unknownKeys(layers.fileName!, layers.unknownFileKeys));
  for (const setting of settings) {
    let raw: unknown = setting.default;
    let origin: Origin = 'default';
    for (const [layer, source] of [
      ['file', layers.file],
      ['env', layers.env],
      ['flag', layers.flags],
    ] as const) {
      if (source && source[setting.key] !== undefined) {
        raw = source[setting.key];
        origin = layer;
      }
    }
    if (layers.fileUnread && origin === 'default') {
      invalid.add(setting.key);
      continue;
    }
    if (raw === undefined) continue;
    if (raw instanceof UnderFormerName) {
      formerNames[setting.key] = raw.name;
      raw = raw.value;
    }
    // Unset on purpose, over the environment and the file (Setting.clearable).
    if (origin === 'flag' && raw === '' && setting.clearable) {
      origins[setting.key] = origin;
      continue;
    }
    // A default is the table's own value, held as the config holds it (milliseconds, bytes): it is not parsed as
    // an operator's value, which must give a duration its unit.
    if (origin === 'default') {
      values[setting.key] = raw;
      origins[setting.key] = origin;
      continue;
    }
    const result = setting.schema.safeParse(raw);
    if (!result.success) {
      const hidden = setting.secret || setting.unechoed;
      // A path names a mapping's key, which in a value that did not parse can be a piece of a secret (a comma inside
      // a password splits it into a name): only a key shaped like a name is shown then.
      const where = (path: readonly PropertyKey[]) => path.map((part) => (hidden && !/^[A-Za-z][\w.-]*$/.test(String(part)) ? '(name not shown)' : String(part))).join('.');
      const problem = result.error.issues.map((i) => (i.path.length > 0 ? `${where(i.path)}: ${expectation(i.message)}` : expectation(i.message))).join('; ');
      const shown = setting.secret ? '(secret)' : setting.unechoed ? '(value not shown)' : withoutUserInfo(JSON.stringify(raw));
      const given = describeOrigin(setting, origin, layers.fileName, formerNames[setting.key]);
      problems.add(new ConfigError(`invalid ${given}: ${shown}; expected ${problem}`, serviceLinkFix(setting, origin, raw) ?? `correct the ${given} (setting ${setting.key})`));
      invalid.add(setting.key);
      continue;
    }
    values[setting.key] = result.data;
    origins[setting.key] = origin;
  }
  for (const key of layers.required ?? []) {
    if (values[key] === undefined && !invalid.has(key)) problems.add(missing(key));
  }
  return { values, origins, formerNames, invalid };
}

function missing(key: string): ConfigError {
  const setting = SETTINGS_BY_KEY.get(key)!;
  return new ConfigError(`missing required setting ${key}`, `pass ${setting.flag} ${setting.placeholder}, set ${setting.env}, or add "${key}" to the config file`);
}

/** Where a command's settings come from besides the defaults. */
export interface SettingSources {
  flags: RawValues;
  env?: NodeJS.ProcessEnv;
  /** --config; falls back to OUTBOX_RELAY_CONFIG. */
  configFile?: string;
  /** Receives one line per former setting name in use, per unknown OUTBOX_RELAY_* variable and per problem the YAML parser reads past (default: stderr). */
  warn?: (line: string) => void;
}

/** The layers resolveSettings reads; a config file that cannot be read is one of `problems`. */
export function readLayers(sources: SettingSources, problems: ConfigProblems) {
  const env = sources.env ?? process.env;
  const fileName = sources.configFile ?? env.OUTBOX_RELAY_CONFIG;
  const warn = sources.warn ?? ((line: string) => process.stderr.write(`${line}\n`));
  const file = fileName ? problems.check(() => readConfigFile(fileName, warn)) : undefined;
  return {
    file: file?.values,
    fileName,
    fileUnread: fileName !== undefined && file === undefined,
    unknownFileKeys: file?.unknown,
    env: readEnv(env, warn),
    flags: sources.flags,
  };
}

/**
 * A few settings resolved exactly as loadConfig resolves them (the same sources, layers and schemas), and nothing
 * else: for a command that reads only these (health), the other settings and the checks across them are none of
 * its business, and must not fail it. Throws only what keeps these from being known: their invalid values, and a
 * config file that cannot be read when one of them was left to it.
 */
export function loadSettings<K extends keyof SettingValues>(keys: readonly K[], sources: SettingSources): { values: Pick<SettingValues, K>; origins: Partial<Record<K, Origin>>; fileName: string | undefined } {
  const problems = new ConfigProblems();
  const layers = readLayers(sources, problems);
  // Its unknown keys are not these settings' problem: run and config check, which read every key, refuse them.
  const resolved = resolveSettings({ ...layers, unknownFileKeys: undefined }, problems, keys.map((key) => SETTINGS_BY_KEY.get(key)!));
  if (keys.some((key) => resolved.invalid.has(key))) problems.throwIfAny();
  return { values: resolved.values as Pick<SettingValues, K>, origins: resolved.origins as Partial<Record<K, Origin>>, fileName: layers.fileName };
}
