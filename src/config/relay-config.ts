import { accessSync, constants, readFileSync } from 'node:fs';
import type pg from 'pg';
import type { SASLOptions } from 'kafkajs';
import { applicationName } from '../instance.js';
import { atMostOnceWindowRefused } from '../checkpoint/replay-window.js';
import { preferTls } from '../source/pg-connect.js';
import { parseLsn } from '../lsn.js';
import { formatDuration } from './units.js';
import { MESSAGE_TOPIC_FIELDS } from '../route/message-mapper.js';
import { DEAD_LETTER_PLACEHOLDERS, compileTopicTemplate, topicNameProblem, type TopicTemplate } from '../route/topic-template.js';
import { ConfigError, ConfigProblems, readLayers, readValid, resolveSettings, type SettingSources } from './load.js';
import { checkClientSupport, checkProducerProperties } from './producer-properties.js';
import { POSTGRES_URL_FORM, SETTINGS, isPostgresUrl, settingRef, type SettingValues } from './settings.js';
import { presetReplacements, tableMappings } from './tables.js';
import { checkWindowFitsHeap } from './window-heap.js';
import { librdkafkaRefusals } from '../sink/rdkafka-client.js';
import type { EnvelopeConfig, Origin, RelayConfig, TableMapping } from './types.js';

function readSecretFile(path: string, key: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new ConfigError(`cannot read ${key} ${path}: ${(err as Error).message}`, `mount the secret file, or fix the path in ${settingRef(key)}`);
  }
}

/** The files a PostgreSQL URL may name for TLS, which pg reads from it (sslrootcert: the CA; sslcert, sslkey: a client certificate). */
const URL_TLS_FILES = ['sslrootcert', 'sslcert', 'sslkey'];

/**
 * postgres.sslmode replaces the URL's TLS parameters: the CA and client certificate the URL names would be dropped
 * without a word, the server unverified against that CA, the client certificate never presented.
 */
function urlTlsFilesRefused(files: string[], source: 'postgres.url' | 'DATABASE_URL', sslmode: string): ConfigError {
  const fixes =
    sslmode === 'disable'
      ? [`remove ${files.join(', ')} from ${source}: postgres.sslmode disable turns TLS off`]
      : [
          ...(files.includes('sslrootcert') ? [`give the CA as ${settingRef('postgres.sslCaFile')} instead of sslrootcert`] : []),
          ...(files.some((f) => f !== 'sslrootcert')
            ? [`client certificates are not supported with postgres.sslmode: remove sslcert and sslkey from ${source}, or leave postgres.sslmode unset and give sslmode in ${source}, where pg reads them (it takes prefer, require and verify-ca as verify-full)`]
            : []),
        ];
  return new ConfigError(`${source} has ${files.join(', ')}, which postgres.sslmode (${sslmode}) replaces with its own TLS settings: the relay would connect without them`, fixes.join('; '));
}

/** The sslmode values pg reads in a URL; it takes any other (a typo, libpq's `allow`) as TLS with verify-full. */
const PG_URL_SSLMODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'];

/** Not a check at connect: pg would try TLS on, and fail later as "The server does not support SSL connections". */
function urlSslmodeRefused(mode: string, source: 'postgres.url' | 'DATABASE_URL'): ConfigError {
  return new ConfigError(
    `${source} has sslmode=${JSON.stringify(mode)}, which pg does not know: it would connect with TLS and verify the server as verify-full does`,
    `use one of ${PG_URL_SSLMODES.join(', ')} in ${source}, or set ${settingRef('postgres.sslmode')}, which replaces it`,
  );
}

/**
 * Each of its refusals goes to `problems`, so that they come in one round: they do not depend on each other. Each
 * check reads only the settings it needs, so that an invalid one skips only the checks that read it (readValid).
 */
function postgresConfig(v: SettingValues, env: NodeJS.ProcessEnv, problems: ConfigProblems): pg.ClientConfig {
  const filePassword = problems.check(() => {
    const passwordFile = v['postgres.passwordFile'];
    return passwordFile ? readSecretFile(passwordFile, 'postgres.passwordFile') : undefined;
  });
  const connectionString = problems.check(() => {
    const url = v['postgres.url'] ?? env.DATABASE_URL;
    if (!url) return undefined;
    // postgres.url passed the same check in its schema; DATABASE_URL is read here only. Never shown: it may hold a password.
    if (!isPostgresUrl(url)) {
      problems.add(new ConfigError(`environment variable DATABASE_URL is not ${POSTGRES_URL_FORM}`, 'correct DATABASE_URL, or set postgres.url (--postgres-url / OUTBOX_RELAY_POSTGRES_URL)'));
      return undefined;
    }
    const parsed = new URL(url);
    const source = v['postgres.url'] !== undefined ? 'postgres.url' : 'DATABASE_URL';
    const sslmode = v['postgres.sslmode'];
    if (sslmode) {
      const files = URL_TLS_FILES.filter((p) => parsed.searchParams.has(p));
      if (files.length > 0) problems.add(urlTlsFilesRefused(files, source, sslmode));
      // pg lets sslmode in the URL override an explicit `ssl` object, so our setting must take it out.
      parsed.searchParams.delete('sslmode');
    } else {
      const urlMode = parsed.searchParams.get('sslmode');
      if (urlMode && !PG_URL_SSLMODES.includes(urlMode)) problems.add(urlSslmodeRefused(urlMode, source));
      // pg reads them when it connects, and a missing one threw out of its connect: run halted INTERNAL ("a defect
      // of outbox-relay") and stayed up.
      for (const param of URL_TLS_FILES) {
        const path = parsed.searchParams.get(param);
        if (!path || path === 'system') continue;
        try {
          accessSync(path, constants.R_OK);
        } catch (err) {
          problems.add(new ConfigError(`the ${param} parameter of ${source} names ${path}, which cannot be read: ${(err as Error).message}`, `mount the file, or correct the path in ${source}`));
        }
      }
    }
    // pg lets every field of the URL (an empty password included) override the explicit `password`, so the
    // file's password goes into the URL, percent-encoded, in place of the URL's own.
    if (filePassword !== undefined) {
      parsed.searchParams.delete('password');
      parsed.password = encodeURIComponent(filePassword);
      // A URL without a host (a Unix socket: postgres:///db?host=/run/postgresql, socket:/run/postgresql) cannot
      // hold a password in its user info, and the setter above does nothing there: pg reads the query's instead.
      if (parsed.password === '') parsed.searchParams.set('password', filePassword);
    }
    return parsed.toString();
  });
  problems.check(() => postgresPortCheck(v, env));
  const ssl = problems.check((): pg.ClientConfig['ssl'] => {
    const caFile = v['postgres.sslCaFile'];
    const sslmode = v['postgres.sslmode'];
    // Any other mode would leave the CA unread (unset: not even TLS), while the operator believes the server verified.
    if (caFile !== undefined && sslmode !== 'verify-ca' && sslmode !== 'verify-full') {
      throw new ConfigError(
        `postgres.sslCaFile is read only with postgres.sslmode verify-ca or verify-full (postgres.sslmode is ${sslmode ?? 'not set'})`,
        'set --postgres-sslmode verify-full (OUTBOX_RELAY_POSTGRES_SSLMODE, key postgres.sslmode), or verify-ca to leave out the host name check; or remove postgres.sslCaFile',
      );
    }
    if (!sslmode) return undefined;
    const ca = caFile ? problems.check(() => readSecretFile(caFile, 'postgres.sslCaFile')) : undefined;
    if (sslmode === 'disable') return false;
    if (sslmode === 'prefer') return preferTls();
    if (sslmode === 'require') return { rejectUnauthorized: false };
    if (sslmode === 'verify-ca') return { rejectUnauthorized: true, ca, checkServerIdentity: () => undefined };
    return { rejectUnauthorized: true, ca };
  });
  return {
    connectionTimeoutMillis: v['postgres.connectTimeout'],
    statement_timeout: v['postgres.statementTimeout'],
    application_name: applicationName(v.slot),
    ...(connectionString !== undefined ? { connectionString } : filePassword !== undefined ? { password: filePassword } : {}),
    ...(ssl !== undefined ? { ssl } : {}),
  };
}

/**
 * The port pg will connect to, where one is given: the URL's `port` parameter, else its port, else PGPORT. pg
 * passes a port that is no TCP port (PGPORT=99999, ?port=abc) to the socket, which threw out of pg's connect: the
 * operator commands exited 13 without a line, and run halted INTERNAL ("a defect") after its connect timeout.
 */
function postgresPortCheck(v: SettingValues, env: NodeJS.ProcessEnv): void {
  const url = v['postgres.url'] ?? env.DATABASE_URL;
  const parsed = url !== undefined && URL.canParse(url) ? new URL(url) : undefined;
  const source = v['postgres.url'] !== undefined ? settingRef('postgres.url') : 'DATABASE_URL';
  const query = parsed?.searchParams.get('port');
  const [port, where] = query ? [query, `the port parameter of ${source}`] : parsed?.port ? [parsed.port, `the port of ${source}`] : [env.PGPORT, 'environment variable PGPORT'];
  if (!port || (/^\d+$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) return;
  throw new ConfigError(`${where} is not a TCP port (1 to 65535): ${JSON.stringify(port)}`, `correct ${where} (PostgreSQL listens on 5432 unless configured otherwise)`);
}

/** Settings only librdkafka reads that have a default, so that only one given explicitly can be refused with another client. */
const RDKAFKA_ONLY_WITH_DEFAULT = ['kafka.linger', 'kafka.batchSize'];

const SASL_CREDENTIALS = ['kafka.saslUsername', 'kafka.saslPassword', 'kafka.saslPasswordFile'] as const;

/**
 * librdkafka refuses a producer whose message.timeout.ms is not above linger.ms. The events' producer has none (0),
 * but the checkpoint writer's takes kafka.deliveryTimeout and the exactly-once producer the shorter of it and
 * delivery.transactionTimeout: with a linger as long, no checkpoint was ever written (a warn line per interval)
 * and exactly-once failed at its first connect with a fix naming kafka.producer.
 */
function lingerOutlastsTimeout(v: SettingValues): ConfigError | undefined {
  if (v['kafka.client'] !== 'rdkafka') return undefined;
  const transactional = v['delivery.guarantee'] === 'exactly-once' && v['delivery.transactionTimeout'] < v['kafka.deliveryTimeout'];
  const [timeoutKey, timeoutMs] = transactional ? ['delivery.transactionTimeout', v['delivery.transactionTimeout']] : ['kafka.deliveryTimeout', v['kafka.deliveryTimeout']];
  if (v['kafka.linger'] < timeoutMs) return undefined;
  return new ConfigError(
    `kafka.linger (${formatDuration(v['kafka.linger'])}) must be shorter than ${timeoutKey} (${formatDuration(timeoutMs)}): librdkafka refuses a producer whose records could time out while they linger`,
    `lower ${settingRef('kafka.linger')} (a few ms is what it is for), or raise ${settingRef(timeoutKey)}`,
  );
}

/** The SASL options, or a refusal of the credentials kafka.saslMechanism needs or would leave unread. */
function saslOptions(v: SettingValues, problems: ConfigProblems): SASLOptions | undefined {
  const mechanism = v['kafka.saslMechanism'];
  if (!mechanism) {
    // Without a mechanism the client would connect unauthenticated, the credentials unread.
    const given = SASL_CREDENTIALS.filter((key) => v[key] !== undefined);
    if (given.length === 0) return undefined;
    throw new ConfigError(
      `${given.join(', ')} ${given.length > 1 ? 'are' : 'is'} given without kafka.saslMechanism, which alone turns SASL on: the relay would connect without authenticating`,
      'set kafka.saslMechanism (--kafka-sasl-mechanism / OUTBOX_RELAY_KAFKA_SASL_MECHANISM): plain, scram-sha-256 or scram-sha-512; or remove them',
    );
  }
  const username = v['kafka.saslUsername'];
  const passwordFile = v['kafka.saslPasswordFile'];
  const password = passwordFile ? problems.check(() => readSecretFile(passwordFile, 'kafka.saslPasswordFile')) : v['kafka.saslPassword'];
  // An unreadable file is reported by readSecretFile's own error; an empty one is no password.
  const unreadable = passwordFile !== undefined && password === undefined;
  if (!username || (!password && !unreadable)) {
    throw new ConfigError(
      `kafka.saslMechanism ${mechanism} needs a user name and a password`,
      'set kafka.saslUsername (--kafka-sasl-username / OUTBOX_RELAY_KAFKA_SASL_USERNAME) and kafka.saslPasswordFile (--kafka-sasl-password-file / OUTBOX_RELAY_KAFKA_SASL_PASSWORD_FILE), or kafka.saslPassword',
    );
  }
  return password ? ({ mechanism, username, password } as SASLOptions) : undefined;
}

/**
 * Settings left at their default that another setting's value turns on, with that setting: kafka.sslCaFile turns
 * TLS on. Shown as the relay uses them (config check, the start-up line), as a preset's values are: config check
 * printed kafka.ssl false (default) for a relay that connected with TLS.
 */
function impliedSettings(v: SettingValues, origins: Record<string, Origin>): Record<string, { value: unknown; by: string }> {
  return v['kafka.sslCaFile'] !== undefined && origins['kafka.ssl'] === 'default' ? { 'kafka.ssl': { value: true, by: 'kafka.sslCaFile' } } : {};
}

/** Each check reads only the settings it needs, so that an invalid one skips only the checks that read it (readValid). */
function kafkaConfig(v: SettingValues, origins: Record<string, Origin>, producing: boolean, problems: ConfigProblems): RelayConfig['kafka'] {
  const ssl = problems.check(() => {
    const caFile = v['kafka.sslCaFile'];
    return caFile ? { ca: [readSecretFile(caFile, 'kafka.sslCaFile')] } : v['kafka.ssl'];
  });
  // A CA file turns TLS on (impliedSettings); beside an explicit kafka.ssl false it did so without a word, against
  // what the operator wrote: which one was meant is theirs to say.
  problems.check(() => {
    if (v['kafka.sslCaFile'] === undefined || origins['kafka.ssl'] === 'default' || v['kafka.ssl'] !== false) return;
    throw new ConfigError(
      'kafka.ssl is false, but kafka.sslCaFile is given, which is read only over TLS and turns TLS on',
      `remove ${settingRef('kafka.ssl')} to connect with TLS, verifying the brokers against the CA file; or remove ${settingRef('kafka.sslCaFile')} to connect without TLS`,
    );
  });
  const sasl = problems.check(() => saslOptions(v, problems));
  problems.check(() => {
    const properties = v['kafka.producer'] ?? {};
    const denied = checkProducerProperties(properties);
    for (const refused of denied.values()) problems.add(refused);
    // librdkafka's client refuses them one at a time, at the first connection: each one it would refuse is
    // named here with the other problems. Not one the relay refused already: it never reaches librdkafka.
    if (!producing || v['kafka.client'] !== 'rdkafka') return;
    for (const refused of librdkafkaRefusals(Object.entries(properties).filter(([name]) => !denied.has(name)))) problems.add(refused);
  });
  checkClientSupport(v, origins, RDKAFKA_ONLY_WITH_DEFAULT, problems);
  problems.check(() => {
    const lingerRefused = lingerOutlastsTimeout(v);
    if (lingerRefused) throw lingerRefused;
  });
  return {
    brokers: v['kafka.brokers'] ?? [],
    clientId: v['kafka.clientId'],
    client: v['kafka.client'],
    ssl,
    ...(sasl ? { sasl } : {}),
    compression: v['kafka.compression'],
    requestTimeoutMs: v['kafka.requestTimeout'],
    deliveryTimeoutMs: v['kafka.deliveryTimeout'],
    lingerMs: v['kafka.linger'],
    batchSizeBytes: v['kafka.batchSize'],
    clientRack: v['kafka.clientRack'],
    producer: v['kafka.producer'] ?? {},
  };
}

export interface LoadOptions extends SettingSources {
  required?: string[];
  /**
   * The command holds events in flight (run, replay; config check, which refuses what run refuses): the window
   * must fit this process's heap, checked with the other problems. The commands without one leave it out.
   */
  inFlightWindow?: boolean;
  /**
   * The command produces through kafka.client (run, replay, republish but its --dry-run; config check, which
   * refuses what run refuses): with rdkafka, librdkafka reads kafka.producer's properties, checked with the other
   * problems. The other commands leave it out, and do not load the native module for it.
   */
  producing?: boolean;
  /**
   * The problems of the command's own flags and arguments (replay --to-lsn, republish --since, slot advance
   * <lsn>), found before: thrown in one error with the settings' own, so that one round fixes them all.
   */
  problems?: ConfigProblems;
  /** A check of the command's own flags against the settings (replay: --to-lsn not before startLsn), run with theirs. */
  check?: (v: SettingValues) => void;
}

interface EventTopic {
  setting: string;
  topic: string;
}

/** Every event topic as its setting gives it (a template as written), with the setting (and table) that names it. */
function eventTopics(v: SettingValues, tables: readonly TableMapping[], problems: ConfigProblems): EventTopic[] {
  const where = (t: TableMapping, key: 'topic' | 'routes'): string => (v.tables === undefined ? key : `tables (${t.schema}.${t.table}) ${key}`);
  const messages = problems.check(() => (v['messages.prefixes'] ? [{ setting: 'messages.topic', topic: v['messages.topic'] }] : [])) ?? [];
  return [...tables.flatMap((t) => [{ setting: where(t, 'topic'), topic: t.topic }, ...(t.routes ?? []).map((r) => ({ setting: where(t, 'routes'), topic: r.topic }))]), ...messages];
}

/**
 * checkpoint.topic: a legal name (else creating it failed for ever as a Kafka outage, with a fix that fails too),
 * and no event topic given as a literal name, nor the dead-letter topic (`deadLetterTopic`, with dead-lettering):
 * else every event, or dead letter, was refused at run time (checkpointTopicRefused), a halt at the first.
 * Templates with placeholders are checked per event, as before.
 */
function checkCheckpointTopic(v: SettingValues, literals: readonly EventTopic[], deadLetterTopic: string | undefined, problems: ConfigProblems): void {
  const checkpointTopic = v['checkpoint.topic'];
  const illegal = topicNameProblem(checkpointTopic, 'checkpoint.topic');
  if (illegal) problems.add(new ConfigError(illegal.problem, illegal.fix));
  // Every setting that names it, once each (two routes of a table are one setting): each needs its own fix.
  const clashes = new Map(literals.filter((l) => l.topic === checkpointTopic).map((l) => [l.setting, 'event']));
  if (deadLetterTopic === checkpointTopic) clashes.set('delivery.deadLetterTopic', 'dead letter');
  for (const [setting, sent] of clashes) {
    problems.add(
      new ConfigError(
        `${setting} is the checkpoint topic "${checkpointTopic}": every ${sent} sent there would be refused (a record in it could move where a restart resumes)`,
        `give ${settingRef(setting)} or ${settingRef('checkpoint.topic')} another name: the checkpoint topic takes only the relay's checkpoints`,
      ),
    );
  }
}

/**
 * A fixed delivery.deadLetterTopic that a table's topic, a route's or messages.topic names too: its dead letters
 * (a NULL payload's is a tombstone for its key) would land among that topic's events. The global `topic` is
 * refused on its own (loadConfig); a template with placeholders is known per event only, so only a topic written
 * exactly as the fixed name is refused here.
 */
function checkDeadLetterNotEventTopic(v: SettingValues, template: TopicTemplate, literals: readonly EventTopic[], problems: ConfigProblems): void {
  if (template.columns.length > 0) return;
  const dlq = v['delivery.deadLetterTopic'];
  // Once each (two routes of a table are one setting); `topic` itself has its own refusal.
  const clashes = new Set(literals.filter((l) => l.topic === dlq && l.setting !== 'topic').map((l) => l.setting));
  for (const setting of clashes) {
    problems.add(new ConfigError(`delivery.deadLetterTopic "${dlq}" is the topic of ${setting}: dead letters would land among its events`, `give ${settingRef('delivery.deadLetterTopic')} a name of its own, such as \${topic}.dlq (the default), or ${setting} another topic`));
  }
}

/**
 * delivery.deadLetterTopic for an event that got no topic (a row or a message that could not be mapped): its
 * ${topic} is the event's source, schema.table or the message prefix, which must give a legal name too. A prefix
 * such as app:events gave app:events.dlq: such an event halted (TOPIC_INVALID) with dead-lettering configured.
 */
function checkDeadLetterSources(v: SettingValues, template: TopicTemplate, tables: readonly TableMapping[]): void {
  const sources = [...tables.map((t) => ({ name: `${t.schema}.${t.table}`, what: 'table' })), ...(v['messages.prefixes'] ?? []).map((name) => ({ name, what: 'message prefix' }))];
  const illegal = sources.flatMap(({ name, what }) => {
    try {
      template.render(() => name);
      return [];
    } catch {
      return [`${what} "${name}"`];
    }
  });
  if (illegal.length === 0) return;
  throw new ConfigError(
    `delivery.deadLetterTopic "${v['delivery.deadLetterTopic']}" gives no legal topic name for an event of ${illegal.join(', ')} that cannot be mapped: \${topic} is then its source`,
    `give ${settingRef('delivery.deadLetterTopic')} a fixed name, or use message prefixes and table names of letters, digits, '.', '_' and '-' only (what a Kafka topic name may hold)`,
  );
}

/** The one validated configuration object, built at start-up before any connection opens. */
export function loadConfig(options: LoadOptions): RelayConfig {
  const env = options.env ?? process.env;
  // The file's, the values' and the checks' problems fail together: one fix-and-retry round.
  const problems = options.problems ?? new ConfigProblems();
  const resolved = resolveSettings({ ...readLayers(options, problems), required: options.required ?? [] }, problems);
  // Every value read here passed its setting's schema (readValid skips the check that reads one that did not):
  // the table's types hold. Each check below reads only what it needs, and runs whatever else is invalid.
  const v = readValid(resolved) as SettingValues;
  // Read where it is used, so that an invalid envelope.mode skips only what depends on it.
  const envelope = (): EnvelopeConfig => ({ mode: v['envelope.mode'], source: v['envelope.source'] });
  // Compiled only for their checks, so that a template that can never be legal fails here, naming its setting.
  problems.check(() => {
    if (v['messages.prefixes']) compileTopicTemplate(v['messages.topic'], 'messages.topic', MESSAGE_TOPIC_FIELDS);
  });
  const deadLetterTopic = problems.check(() => (v['delivery.onPoison'] === 'dead-letter' ? compileTopicTemplate(v['delivery.deadLetterTopic'], 'delivery.deadLetterTopic', DEAD_LETTER_PLACEHOLDERS) : undefined));
  // A dead letter in the event's own topic reads as the event: a NULL payload's (a null value) deletes its key from a
  // compacted topic, the very thing mapping.nullPayload=poison keeps from happening. ${topic} alone is judged compiled,
  // as it is used: the placeholder's name is trimmed, and "${ topic }" compared as text passed.
  problems.check(() => {
    const dlq = v['delivery.deadLetterTopic'];
    const topicAlone = deadLetterTopic !== undefined && deadLetterTopic.columns.length === 1 && deadLetterTopic.render(() => 'x') === 'x';
    if (v['delivery.onPoison'] !== 'dead-letter' || (!topicAlone && dlq !== v.topic)) return;
    throw new ConfigError(`delivery.deadLetterTopic "${dlq}" is the events' own topic`, `give ${settingRef('delivery.deadLetterTopic')} a name of its own, such as \${topic}.dlq (the default)`);
  });
  problems.check(() => {
    const window = v.replayWindow;
    if (v['delivery.guarantee'] !== 'at-most-once' || window === undefined || window.kind === 'none') return;
    throw atMostOnceWindowRefused(window, 'set by replayWindow', `set ${settingRef('replayWindow')} to 0 (it also releases a window recorded in the checkpoint), or ${settingRef('delivery.guarantee')} to at-least-once`);
  });
  const postgres = problems.check(() => postgresConfig(v, env, problems));
  const tables = problems.check(() => tableMappings(v, resolved.origins, envelope, problems));
  // Tables whose settings are invalid have no topics to compare: the other literal topics are still compared.
  const literals = eventTopics(v, tables ?? [], problems);
  // Read apart, so that an invalid delivery.onPoison does not skip the event topics' comparison.
  const deadLetterName = problems.check(() => (v['delivery.onPoison'] === 'dead-letter' ? v['delivery.deadLetterTopic'] : undefined));
  problems.check(() => checkCheckpointTopic(v, literals, deadLetterName, problems));
  // Undefined without dead-lettering, or for a template that can never be legal (its own problem, above).
  if (deadLetterTopic) problems.check(() => checkDeadLetterSources(v, deadLetterTopic, tables ?? []));
  if (deadLetterTopic) problems.check(() => checkDeadLetterNotEventTopic(v, deadLetterTopic, literals, problems));
  const kafka = problems.check(() => kafkaConfig(v, resolved.origins, options.producing === true, problems));
  if (options.inFlightWindow) problems.check(() => checkWindowFitsHeap(v['delivery.maxInFlightEvents']));
  if (options.check) problems.check(() => options.check!(v));
  problems.throwIfAny();
  // No problem: every setting is valid, and every check above returned its value.
  const prefixes = v['messages.prefixes'];
  // The flat keys as the relay uses them (and every table that sets neither the key nor a preset of its own): shown
  // as the default the preset replaced, they misled an operator checking the configuration.
  const replaced = presetReplacements(resolved.origins, v.preset);
  const implied = impliedSettings(v, resolved.origins);
  return {
    postgres: postgres!,
    slot: v.slot,
    publication: v.publication,
    tables: tables!,
    startLsn: v.startLsn ? parseLsn(v.startLsn) : undefined,
    kafka: kafka!,
    delivery: {
      maxInFlightEvents: v['delivery.maxInFlightEvents'],
      maxInFlightBytes: v['delivery.maxInFlightBytes'],
      batchMaxEvents: v['delivery.batchMaxEvents'],
      batchMaxBytes: v['delivery.batchMaxBytes'],
      coalesceMs: v['delivery.coalesce'] ?? (v['kafka.client'] === 'kafkajs' ? 1 : 0),
      onPoison: v['delivery.onPoison'],
      deadLetterTopic: v['delivery.deadLetterTopic'],
      transactionTimeoutMs: v['delivery.transactionTimeout'],
    },
    messages: prefixes ? { prefixes, topic: v['messages.topic'], envelope: envelope() } : undefined,
    heartbeat: { intervalMs: v['heartbeat.interval'], prefix: v['heartbeat.prefix'] },
    retry: {
      initialDelayMs: v['retry.initialDelay'],
      maxDelayMs: v['retry.maxDelay'],
      maxDurationMs: v['retry.maxDuration'],
      recordMaxAttempts: v['retry.recordMaxAttempts'],
      recordMaxDurationMs: v['retry.recordMaxDuration'],
    },
    statusIntervalMs: v.statusInterval,
    receiveTimeoutMs: v['postgres.receiveTimeout'],
    shutdownGraceMs: v.shutdownGrace,
    http: { port: v['http.port'], host: v['http.host'] },
    logLevel: v['log.level'],
    origins: {
      ...resolved.origins,
      ...Object.fromEntries(Object.keys(replaced).map((key) => [key, 'preset' as const])),
      ...Object.fromEntries(Object.keys(implied).map((key) => [key, 'implied' as const])),
    },
    impliedBy: Object.fromEntries(Object.entries(implied).map(([key, { by }]) => [key, by])),
    formerNames: resolved.formerNames,
    values: { ...resolved.values, ...replaced, ...Object.fromEntries(Object.entries(implied).map(([key, { value }]) => [key, value])) },
  };
}

/** Settings with secrets masked: safe for logs and --json output. */
export function redactedSettings(config: RelayConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const setting of SETTINGS) {
    const value = config.values[setting.key];
    if (value === undefined) continue;
    if (setting.key === 'postgres.url') out[setting.key] = redactUrl(value as string);
    else out[setting.key] = setting.secret ? '***' : value;
  }
  return out;
}

export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    for (const [k] of parsed.searchParams) if (/pass/i.test(k)) parsed.searchParams.set(k, '***');
    return parsed.toString();
  } catch {
    return '***';
  }
}
