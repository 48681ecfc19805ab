import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UnderFormerName, readEnv } from '../../src/config/load.js';
import { loadConfig } from '../../src/config/relay-config.js';
import { load, refusal } from '../support/config-load.js';
import { runCliSync } from '../support/cli.js';

/** One error for `count` problems, naming each of `parts` (a message, or the CLI's stderr). */
function expectProblems(text: string, count: number, parts: string[]): void {
  expect(text).toMatch(new RegExp(`^(outbox-relay: CONFIG_INVALID: )?${count} settings are invalid:`));
  for (const part of parts) expect(text).toContain(part);
}

describe('config: every problem at once, the settings that depend on each other too', () => {
  it('reports each refusal across settings in one error, not the first only', () => {
    const r = refusal(() =>
      load({ 'kafka.client': 'kafkajs', 'kafka.compression': 'zstd', 'kafka.clientRack': 'az-1', 'kafka.saslMechanism': 'plain', 'delivery.onPoison': 'dead-letter', 'delivery.deadLetterTopic': 'bad topic' }),
    );
    expect(r.code).toBe('CONFIG_INVALID');
    expect(r.message).toMatch(/^4 settings are invalid:/);
    for (const part of ['kafka.saslMechanism plain needs a user name and a password', 'kafka.compression zstd', 'kafka.clientRack', 'delivery.deadLetterTopic']) expect(r.message).toContain(part);
  });

  it('reports each problem of the PostgreSQL connection settings in one error (before, only the first: one round per mistake)', () => {
    const r = refusal(() => load({ 'postgres.passwordFile': '/missing/pg-password', 'postgres.sslCaFile': 'ca.pem' }, { DATABASE_URL: 'db.internal:5432/app' }));
    expect(r.message).toMatch(/^3 settings are invalid:/);
    for (const part of ['cannot read postgres.passwordFile /missing/pg-password', 'environment variable DATABASE_URL is not a URL', 'postgres.sslCaFile is read only with postgres.sslmode verify-ca or verify-full']) expect(r.message).toContain(part);
  });

  it('reports each problem of a table’s mapping, topic and routes in one error (before, only the first per table)', () => {
    const r = refusal(() => load({ 'mapping.type': '', 'mapping.aggregateType': '', routes: 'A*=a,B*=b c', 'filter.excludeAggregateTypes': 'x', topic: 'bad topic' }));
    expect(r.message).toMatch(/^4 settings are invalid:/);
    for (const part of ['routes or filters match on the event type, but mapping.type is ""', 'routes or filters match on the aggregate type, but mapping.aggregateType is ""', 'topic: "bad topic" has " "', 'routes.1.topic: "b c" has " "']) {
      expect(r.message).toContain(part);
    }
  });

  it('names every unknown key of a config file, not the first only', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'relay.yaml');
    writeFileSync(file, 'kafka:\n  broker: k:9092\nslots: x\nhttp:\n  prot: 1\n');
    const r = refusal(() => load({}, {}, file));
    for (const key of ['kafka.broker', 'slots', 'http.prot']) expect(r.message).toContain(`"${key}"`);
  });

  it('reports a config file’s unknown keys together with the invalid values (before, the unknown keys hid them)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'relay.yaml');
    writeFileSync(file, 'kafka:\n  brokers: k:9092\n  compresion: gzip\nslot: Bad!\n');
    const r = refusal(() => load({ 'http.port': 'x' }, {}, file));
    expect(r.message).toMatch(/^3 settings are invalid:/);
    for (const part of ['unknown setting "kafka.compresion"', `key "slot" in ${file}: "Bad!"`, 'flag --http-port: "x"']) expect(r.message).toContain(part);
  });
});

describe('config: an invalid value does not hide the checks across settings that do not read it', () => {
  it('reports the values refused by their schema and the refusals of the checks across the other settings in one error (before, those came a round later)', () => {
    const r = refusal(() =>
      load({
        slot: 'Bad!',
        'http.port': 'x',
        'mapping.timestamp': 'bad col',
        topic: 'bad topic',
        'kafka.client': 'kafkajs',
        'kafka.clientRack': 'az-1',
        'postgres.sslCaFile': 'ca.pem',
        'delivery.guarantee': 'at-most-once',
        replayWindow: '1h',
        'checkpoint.topic': 'bad checkpoints',
      }),
    );
    expect(r.code).toBe('CONFIG_INVALID');
    expectProblems(r.message, 8, [
      'invalid flag --slot: "Bad!"',
      'invalid flag --http-port: "x"',
      'invalid flag --mapping-timestamp: "bad col"',
      'topic: "bad topic" has " "',
      'kafka.clientRack is not supported by kafka.client kafkajs',
      'postgres.sslCaFile is read only with postgres.sslmode verify-ca or verify-full',
      'at-most-once cannot keep a replay window (1h, set by replayWindow)',
      'checkpoint.topic "bad checkpoints" is not a legal Kafka topic name',
    ]);
  });

  it('skips a check that reads an invalid value: it would speak of a value already refused', () => {
    // "postgres.sslmode is not set" would be wrong: it is set, misspelt.
    const sslmode = refusal(() => load({ 'postgres.sslmode': 'verify-fulll', 'postgres.sslCaFile': 'ca.pem' }));
    expect(sslmode.message).toMatch(/^invalid flag --postgres-sslmode: "verify-fulll"; expected one of:/);
    const client = refusal(() => load({ 'kafka.client': 'kafkaj', 'kafka.compression': 'zstd', 'kafka.linger': '5ms' }));
    expect(client.message).toMatch(/^invalid flag --kafka-client: "kafkaj"; expected one of:/);
    // The routes are invalid: whether they need mapping.type is not known; the topic is still checked.
    const routes = refusal(() => load({ routes: '[{"topic": "x"}]', 'mapping.type': '', topic: 'bad topic' }));
    expectProblems(routes.message, 2, ['invalid flag --routes', 'topic: "bad topic" has " "']);
  });

  it('config check lists them together, exit 2', () => {
    const result = runCliSync(['config', 'check', '--slot', 'Bad!', '--kafka-client', 'kafkajs', '--kafka-compression', 'zstd'], { OUTBOX_RELAY_KAFKA_BROKERS: 'k:9092' });
    expect(result.status).toBe(2);
    expectProblems(result.stderr, 2, ['invalid flag --slot: "Bad!"', 'kafka.compression zstd is not supported by kafka.client kafkajs']);
  });
});

describe('config: a config file that does not parse', () => {
  it.each([
    ['relay.yaml', 'kafka:\n  brokers: [k:9092\nslot: x\n', /is not valid YAML: line \d+, column \d+: /],
    ['relay.json', '{"slot": "x",}', /is not valid JSON/],
    ['relay.yaml', '- slot: x\n', /expected a mapping of settings at "top level"/],
  ])('%s %j: CONFIG_INVALID with a fix (it had none: no fix line)', (name, text, message) => {
    const file = join(mkdtempSync(join(tmpdir(), 'cfg-')), name);
    writeFileSync(file, text);
    const r = refusal(() => load({}, {}, file));
    expect(r.code).toBe('CONFIG_INVALID');
    expect(r.message).toMatch(message);
    expect(r.hint).toContain('config/outbox-relay.example.yaml');
  });
});

describe('config: a config file that cannot be read does not hide the flags’ and the environment’s problems', () => {
  it('reports it with them in one error (before, the file alone), and nothing of what the file may set', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'cfg-')), 'relay.yaml');
    writeFileSync(file, 'kafka:\n  brokers: [k:9092\n');
    for (const configFile of [file, join(tmpdir(), 'no-such-dir', 'relay.yaml')]) {
      const r = refusal(() => loadConfig({ flags: { slot: 'Bad!', 'kafka.client': 'kafkajs', 'kafka.compression': 'zstd' }, env: { OUTBOX_RELAY_HTTP_PORT: 'x' }, configFile, required: ['kafka.brokers'] }));
      expect(r.message).toMatch(configFile === file ? /is not valid YAML/ : /cannot read config file/);
      expectProblems(r.message, 4, ['invalid flag --slot: "Bad!"', 'invalid environment variable OUTBOX_RELAY_HTTP_PORT: "x"', 'kafka.compression zstd is not supported by kafka.client kafkajs']);
      // kafka.brokers may be in the file.
      expect(r.message).not.toContain('missing required setting');
    }
  });
});

describe('config: a dead-letter topic with a placeholder it does not have', () => {
  it('is refused when the config loads (config check too), naming the flag and the environment variable', () => {
    const r = refusal(() => load({ 'delivery.onPoison': 'dead-letter', 'delivery.deadLetterTopic': '${aggregate_type}.dlq' }));
    expect(r.code).toBe('CONFIG_INVALID');
    expect(r.message).toContain('delivery.deadLetterTopic "${aggregate_type}.dlq" uses ${aggregate_type}');
    expect(r.hint).toBe('use only ${topic} in delivery.deadLetterTopic (--delivery-dead-letter-topic / OUTBOX_RELAY_DELIVERY_DEAD_LETTER_TOPIC)');
    expect(load({ 'delivery.onPoison': 'dead-letter', 'delivery.deadLetterTopic': '${topic}.dlq' }).delivery.deadLetterTopic).toBe('${topic}.dlq');
  });

  it('naming the checkpoint topic is refused (a dead letter there could be read as the position to resume from)', () => {
    const r = refusal(() => load({ 'delivery.onPoison': 'dead-letter', 'delivery.deadLetterTopic': 'ckpt', 'checkpoint.topic': 'ckpt' }));
    expect(r.code).toBe('CONFIG_INVALID');
    expect(r.message).toBe('delivery.deadLetterTopic is the checkpoint topic "ckpt": every dead letter sent there would be refused (a record in it could move where a restart resumes)');
    expect(r.hint).toContain('--delivery-dead-letter-topic / OUTBOX_RELAY_DELIVERY_DEAD_LETTER_TOPIC');
  });

  it('naming the checkpoint topic is refused in the same error as the event topics that name it, each once', () => {
    const r = refusal(() => load({ topic: 'ckpt', 'delivery.onPoison': 'dead-letter', 'delivery.deadLetterTopic': 'ckpt', 'checkpoint.topic': 'ckpt' }));
    expectProblems(r.message, 3, ['  - topic is the checkpoint topic "ckpt": every event sent there', '  - delivery.deadLetterTopic is the checkpoint topic "ckpt": every dead letter sent there']);
    expect(r.message.match(/is the checkpoint topic/g)).toHaveLength(2);
  });

  // Accepted, a NULL payload's dead letter (a null value) went to the event's own topic: a tombstone for its key.
  it("naming the events' own topic is refused: ${topic} alone (spaced as a template may be), or the fixed topic", () => {
    for (const [dlq, topic] of [['${topic}', 'outbox.events'], ['${ topic }', 'outbox.events'], ['${topic }', 'outbox.${aggregate_type}'], ['outbox.events', 'outbox.events']]) {
      const r = refusal(() => load({ 'delivery.onPoison': 'dead-letter', 'delivery.deadLetterTopic': dlq!, topic: topic! }));
      expect(r.message, dlq).toBe(`delivery.deadLetterTopic "${dlq}" is the events' own topic`);
      expect(r.hint).toContain('--delivery-dead-letter-topic / OUTBOX_RELAY_DELIVERY_DEAD_LETTER_TOPIC');
    }
    expect(load({ 'delivery.onPoison': 'dead-letter', 'delivery.deadLetterTopic': 'dlq.${topic}', topic: 'outbox.events' }).delivery.deadLetterTopic).toBe('dlq.${topic}');
    expect(load({ 'delivery.onPoison': 'dead-letter', 'delivery.deadLetterTopic': 'x', topic: 'outbox.events' }).delivery.deadLetterTopic).toBe('x');
  });

  // Accepted, a fixed name that a table's or a route's topic also names took that topic's dead letters: a NULL
  // payload's (a tombstone for its key) among its events. Only the statically equal name is known before run time.
  it("a fixed name that a table's topic, a route's or messages.topic names is refused, naming the setting and the table", () => {
    const tables = refusal(() => load({ 'delivery.onPoison': 'dead-letter', 'delivery.deadLetterTopic': 'orders', tables: JSON.stringify([{ table: 'a', topic: 'orders' }, { table: 'b', topic: 'other', routes: 'Pay*=orders' }]) }));
    expectProblems(tables.message, 2, ['delivery.deadLetterTopic "orders" is the topic of tables (public.a) topic', 'delivery.deadLetterTopic "orders" is the topic of tables (public.b) routes']);
    expect(tables.code).toBe('CONFIG_INVALID');
    const routes = refusal(() => load({ 'delivery.onPoison': 'dead-letter', 'delivery.deadLetterTopic': 'payments', routes: 'Order*=orders,Pay*=payments' }));
    expect(routes.message).toBe('delivery.deadLetterTopic "payments" is the topic of routes: dead letters would land among its events');
    expect(routes.hint).toContain('--delivery-dead-letter-topic / OUTBOX_RELAY_DELIVERY_DEAD_LETTER_TOPIC');
    const messages = refusal(() => load({ 'delivery.onPoison': 'dead-letter', 'delivery.deadLetterTopic': 'msgs', 'messages.prefixes': 'app', 'messages.topic': 'msgs' }));
    expect(messages.message).toBe('delivery.deadLetterTopic "msgs" is the topic of messages.topic: dead letters would land among its events');
    // A template is compared per event at run time only; without dead-lettering the name is unused.
    expect(load({ 'delivery.onPoison': 'dead-letter', 'delivery.deadLetterTopic': 'orders.x', routes: 'Order*=orders.${aggregate_type}' }).delivery.deadLetterTopic).toBe('orders.x');
    expect(load({ 'delivery.deadLetterTopic': 'payments', routes: 'Order*=orders,Pay*=payments' }).delivery.deadLetterTopic).toBe('payments');
  });

  // An event that got no topic goes to the template filled with its source: app:events.dlq, so it halted
  // (TOPIC_INVALID) on an unmappable message with dead-lettering configured.
  it('a message prefix (or table) that makes the template illegal for an event without a topic is refused; a fixed name takes any', () => {
    const r = refusal(() => load({ 'delivery.onPoison': 'dead-letter', 'messages.prefixes': 'app:events,ok,a b' }));
    expect(r.message).toBe('delivery.deadLetterTopic "${topic}.dlq" gives no legal topic name for an event of message prefix "app:events", message prefix "a b" that cannot be mapped: ${topic} is then its source');
    expect(r.hint).toContain('--delivery-dead-letter-topic / OUTBOX_RELAY_DELIVERY_DEAD_LETTER_TOPIC');
    expect(load({ 'delivery.onPoison': 'dead-letter', 'messages.prefixes': 'app:events', 'delivery.deadLetterTopic': 'dlq' }).delivery.deadLetterTopic).toBe('dlq');
    expect(load({ 'messages.prefixes': 'app:events' }).messages?.prefixes).toEqual(['app:events']);
  });
});

describe('config: at-most-once with a replay window set', () => {
  it('is refused when the config loads, with the dead-letter refusal in the same error (one fix-and-retry round)', () => {
    const r = refusal(() => load({ 'delivery.guarantee': 'at-most-once', replayWindow: '1h', 'delivery.onPoison': 'dead-letter', 'delivery.deadLetterTopic': '${x}' }));
    expect(r.message).toMatch(/^2 settings are invalid:/);
    expect(r.message).toContain('at-most-once cannot keep a replay window (1h, set by replayWindow)');
    expect(r.hint).toContain('set replayWindow (--replay-window / OUTBOX_RELAY_REPLAY_WINDOW) to 0');
    expect(load({ 'delivery.guarantee': 'at-most-once', replayWindow: '0' }).values.replayWindow).toEqual({ kind: 'none' });
  });
});

describe('config: credentials given without the setting that uses them are refused, not ignored', () => {
  it('a SASL user name or password file without kafka.saslMechanism (the relay would connect without authenticating)', () => {
    const r = refusal(() => load({ 'kafka.saslUsername': 'relay', 'kafka.saslPasswordFile': '/run/secrets/kafka-password' }));
    expect(r.message).toMatch(/kafka.saslUsername, kafka.saslPasswordFile .*without kafka.saslMechanism/);
    expect(r.hint).toMatch(/--kafka-sasl-mechanism/);
    expect(r.hint).toMatch(/OUTBOX_RELAY_KAFKA_SASL_MECHANISM/);
  });

  it('postgres.sslCaFile without postgres.sslmode verify-ca or verify-full (the connection would not even be encrypted)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ca-'));
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, 'not read');
    for (const sslmode of [undefined, 'require', 'prefer']) {
      const r = refusal(() => load({ 'postgres.sslCaFile': ca, ...(sslmode ? { 'postgres.sslmode': sslmode } : {}) }));
      expect(r.message).toMatch(/postgres.sslCaFile is read only with postgres.sslmode verify-ca or verify-full/);
      expect(r.hint).toMatch(/--postgres-sslmode verify-full/);
    }
    expect(load({ 'postgres.sslCaFile': ca, 'postgres.sslmode': 'verify-full' }).postgres.ssl).toMatchObject({ rejectUnauthorized: true, ca: 'not read' });
  });

  it('sslrootcert, sslcert or sslkey in the URL with postgres.sslmode, which replaced them without a word (no client certificate, no CA)', () => {
    const url = 'postgres://relay@db/app?sslcert=/c.pem&sslkey=/k.pem&sslrootcert=/ca.pem';
    const r = refusal(() => load({ 'postgres.url': url, 'postgres.sslmode': 'verify-full' }));
    expect(r.code).toBe('CONFIG_INVALID');
    expect(r.message).toBe('postgres.url has sslrootcert, sslcert, sslkey, which postgres.sslmode (verify-full) replaces with its own TLS settings: the relay would connect without them');
    expect(r.hint).toContain('give the CA as postgres.sslCaFile (--postgres-ssl-ca-file / OUTBOX_RELAY_POSTGRES_SSL_CA_FILE) instead of sslrootcert');
    expect(r.hint).toContain('client certificates are not supported with postgres.sslmode');
    expect(refusal(() => load({ 'postgres.sslmode': 'require' }, { DATABASE_URL: 'postgres://relay@db/app?sslrootcert=/ca.pem' })).message).toMatch(/^DATABASE_URL has sslrootcert,/);
    // Without the setting pg reads them from the URL (files that must exist: config-postgres-url-files); the URL's
    // sslmode alone is replaced, as documented.
    const dir = mkdtempSync(join(tmpdir(), 'url-tls-'));
    for (const f of ['c.pem', 'k.pem', 'ca.pem']) writeFileSync(join(dir, f), '');
    const readable = `postgres://relay@db/app?sslcert=${dir}/c.pem&sslkey=${dir}/k.pem&sslrootcert=${dir}/ca.pem`;
    expect(load({ 'postgres.url': readable }).postgres.connectionString).toBe(readable);
    expect(load({ 'postgres.url': 'postgres://relay@db/app?sslmode=require', 'postgres.sslmode': 'verify-full' }).postgres.connectionString).toBe('postgres://relay@db/app');
  });

  it('an sslmode in the URL that pg does not know (a typo, libpq\'s allow): refused, naming it (before: accepted, then TLS with verify-full at connect)', () => {
    const r = refusal(() => load({ 'postgres.url': 'postgres://relay:secret@db/app?sslmode=requir' }));
    expect(r.code).toBe('CONFIG_INVALID');
    expect(r.message).toBe('postgres.url has sslmode="requir", which pg does not know: it would connect with TLS and verify the server as verify-full does');
    expect(r.message).not.toContain('secret');
    expect(r.hint).toContain('use one of disable, prefer, require, verify-ca, verify-full, no-verify in postgres.url, or set postgres.sslmode (--postgres-sslmode');
    expect(refusal(() => load({}, { DATABASE_URL: 'postgres://relay@db/app?sslmode=allow' })).message).toMatch(/^DATABASE_URL has sslmode="allow"/);
    // The ones pg reads pass, and postgres.sslmode replaces the URL's, whatever it says.
    for (const mode of ['disable', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify']) expect(load({ 'postgres.url': `postgres://relay@db/app?sslmode=${mode}` }).postgres.connectionString).toContain(mode);
    expect(load({ 'postgres.url': 'postgres://relay@db/app?sslmode=allow', 'postgres.sslmode': 'require' }).postgres.connectionString).toBe('postgres://relay@db/app');
  });
});

describe('config check', () => {
  it('refuses what run refuses: kafka.brokers is required (run exits 2 without it)', () => {
    const result = runCliSync(['config', 'check']);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/^outbox-relay: CONFIG_INVALID: missing required setting kafka.brokers\n {2}fix: pass --kafka-brokers/);
    expect(runCliSync(['config', 'check'], { OUTBOX_RELAY_KAFKA_BROKERS: 'k:9092' }).status).toBe(0);
  });

  it('reports an in-flight window too large for the heap with the other problems (it came a round later, after them)', () => {
    const result = runCliSync(['config', 'check', '--delivery-max-in-flight-events', '10000000', '--checkpoint-topic', 'bad topic'], { OUTBOX_RELAY_KAFKA_BROKERS: 'k:9092' });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/^outbox-relay: CONFIG_INVALID: 2 settings are invalid:/);
    expect(result.stderr).toContain('checkpoint.topic "bad topic" is not a legal Kafka topic name');
    expect(result.stderr).toContain('delivery.maxInFlightEvents 10000000 needs about 9766 MiB of JavaScript heap');
  });

  it('with --json, a usage error is the JSON error object too', () => {
    const result = runCliSync(['config', 'check', '--json', '--kafka-brokerz', 'k:9092']);
    expect(result.status).toBe(2);
    // The missing kafka.brokers is reported with the unknown option (cli-unknown-options.test.ts).
    expect(JSON.parse(result.stdout)).toEqual({ error: { code: 'CONFIG_INVALID', message: expect.stringContaining("unknown option '--kafka-brokerz'"), fix: expect.stringContaining('see outbox-relay config check --help') } });
  });
});

describe('a command’s own flags and arguments, checked with the settings', () => {
  it('replay: --to-lsn in the same error as the settings (before, only once they were valid)', () => {
    const invalid = runCliSync(['replay', '--start-lsn', '0/20', '--to-lsn', 'end', '--slot', 'Bad!']);
    expect(invalid.status).toBe(2);
    expectProblems(invalid.stderr, 3, ['--to-lsn "end" is not an LSN', 'invalid flag --slot: "Bad!"', 'missing required setting kafka.brokers']);
    // Both valid, in the wrong order: that check runs with the settings' too.
    const before = runCliSync(['replay', '--start-lsn', '0/20', '--to-lsn', '0/10', '--slot', 'Bad!', '--kafka-brokers', 'k:9092']);
    expect(before.status).toBe(2);
    expectProblems(before.stderr, 2, ['--to-lsn 0/10 is before --start-lsn 0/20', 'invalid flag --slot: "Bad!"']);
  });

  it('republish: --since, --until, --batch-size and --rate in the same error as the settings, and each other (before, one at a time, after the settings)', () => {
    const result = runCliSync(['republish', '--since', 'yesterday', '--until', 'today', '--batch-size', '0', '--rate', 'fast', '--slot', 'Bad!']);
    expect(result.status).toBe(2);
    expectProblems(result.stderr, 6, ['--since "yesterday" is not a date and time', '--until "today" is not a date and time', '--batch-size "0" is not a whole number', '--rate "fast" is not a whole number', 'invalid flag --slot: "Bad!"', 'missing required setting kafka.brokers']);
    // Dates JavaScript takes (rolling Feb 30 into March, year 0) and PostgreSQL refuses: before, PG_QUERY_FAILED (exit 1).
    const impossible = runCliSync(['republish', '--since', '2026-02-30T00:00:00Z', '--until', '0000-01-01 00:00:00+00', '--kafka-brokers', 'k:9092']);
    expect(impossible.status).toBe(2);
    expectProblems(impossible.stderr, 2, ['--since "2026-02-30T00:00:00Z" is not a date and time', '--until "0000-01-01 00:00:00+00" is not a date and time']);
    const ids = runCliSync(['republish', '--ids', ' , ', '--until', '2026-11-24T08:00:00Z', '--dry-run']);
    expect(ids.status).toBe(2);
    expectProblems(ids.stderr, 2, ['--until goes with --since, not with --ids', '--ids is empty']);
  });

  it('republish: --until after --since by less than a millisecond is after it (timestamptz holds microseconds)', () => {
    // Both read to the millisecond, 08:00:00.0001 and 08:00:00.0009 were refused as "not after" each other.
    const result = runCliSync(['republish', '--since', '2026-11-24T08:00:00.0001Z', '--until', '2026-11-24T08:00:00.0009Z', '--dry-run', '--postgres-url', 'postgres://u@127.0.0.1:1/db']);
    expect(result.stderr).not.toContain('is not after');
    expect(result.status).toBe(1); // the connection refused: the flags were taken
    const swapped = runCliSync(['republish', '--since', '2026-11-24T08:00:00.0009Z', '--until', '2026-11-24T08:00:00.0001Z', '--dry-run', '--postgres-url', 'postgres://u@127.0.0.1:1/db']);
    expect(swapped.status).toBe(2);
    expect(swapped.stderr).toContain('--until 2026-11-24T08:00:00.0001Z is not after --since 2026-11-24T08:00:00.0009Z');
  });

  it('slot advance <lsn> and --row-filter (setup, publication create) in the same error as the settings (before, commander refused them alone)', () => {
    const advance = runCliSync(['slot', 'advance', 'latest', '--slot', 'Bad!']);
    expect(advance.status).toBe(2);
    expectProblems(advance.stderr, 2, ['slot advance <lsn> "latest" is not an LSN', 'invalid flag --slot: "Bad!"']);
    for (const command of [['setup'], ['publication', 'create']]) {
      const filter = runCliSync([...command, '--row-filter', 'true); DROP TABLE outbox; --', '--publication', 'bad-name']);
      expect(filter.status).toBe(2);
      expectProblems(filter.stderr, 2, ['invalid --row-filter', 'invalid flag --publication: "bad-name"']);
    }
  });
});

describe('config: the checkpoint topic', () => {
  it('an illegal name is refused when the config loads (creating it failed for ever as a Kafka outage)', () => {
    const r = refusal(() => load({ 'checkpoint.topic': 'relay checkpoints' }));
    expect(r.code).toBe('CONFIG_INVALID');
    expect(r.message).toBe('checkpoint.topic "relay checkpoints" is not a legal Kafka topic name');
    expect(r.hint).toContain('--checkpoint-topic / OUTBOX_RELAY_CHECKPOINT_TOPIC');
  });

  it('an event topic given as that name is refused (every event was a poison at run time), a template is checked per event', () => {
    const topic = refusal(() => load({ topic: 'ckpt', 'checkpoint.topic': 'ckpt' }));
    expect(topic.message).toMatch(/^topic is the checkpoint topic "ckpt"/);
    expect(topic.hint).toBe("give topic (--topic / OUTBOX_RELAY_TOPIC) or checkpoint.topic (--checkpoint-topic / OUTBOX_RELAY_CHECKPOINT_TOPIC) another name: the checkpoint topic takes only the relay's checkpoints");
    expect(refusal(() => load({ routes: 'Order*=orders,Pay*=ckpt', 'checkpoint.topic': 'ckpt' })).message).toMatch(/^routes is the checkpoint topic "ckpt"/);
    expect(refusal(() => load({ 'messages.prefixes': 'outbox', 'messages.topic': 'ckpt', 'checkpoint.topic': 'ckpt' })).message).toMatch(/^messages.topic is the checkpoint topic "ckpt"/);
    expect(load({ topic: '${aggregate_type}', 'checkpoint.topic': 'ckpt' }).tables[0]!.topic).toBe('${aggregate_type}');
  });
});

describe('config: every event topic that is the checkpoint topic', () => {
  it('is named in one error, each setting once (before, the first only: one round per setting)', () => {
    const r = refusal(() => load({ topic: 'ckpt', routes: 'Order*=ckpt,Pay*=ckpt', 'messages.prefixes': 'outbox', 'messages.topic': 'ckpt', 'checkpoint.topic': 'ckpt' }));
    expectProblems(r.message, 3, ['topic', 'routes', 'messages.topic'].map((setting) => `  - ${setting} is the checkpoint topic "ckpt"`));
    const tables = refusal(() => load({ tables: JSON.stringify([{ table: 'a', topic: 'ckpt' }, { table: 'b', topic: 'ckpt' }]), 'checkpoint.topic': 'ckpt' }));
    expectProblems(tables.message, 2, ['public.a', 'public.b'].map((table) => `tables (${table}) topic is the checkpoint topic "ckpt"`));
  });
});

describe('config: the kafka.producer properties librdkafka refuses', () => {
  const producing = (producer: string, flags: Record<string, unknown> = {}) => refusal(() => loadConfig({ flags: { 'kafka.brokers': 'k:9092', 'kafka.producer': producer, ...flags }, env: {}, producing: true }));

  it('are each named, with the other problems, in one error (before, at the first connection, one per start)', () => {
    const r = producing('lingerr.ms=5,queue.buffering.max.kbytes=lots,socket.keepalive.enable=true,batch.num.messages=0', { slot: 'Bad!' });
    expectProblems(r.message, 4, [
      'invalid flag --slot: "Bad!"',
      'librdkafka refused a producer property: No such configuration property: "lingerr.ms"',
      'librdkafka refused a producer property: Invalid value for configuration property "queue.buffering.max.kbytes"',
      'librdkafka refused a producer property: Configuration property "batch.num.messages" value 0 is outside allowed range',
    ]);
    expect(r.hint).toContain('--kafka-producer');
  });

  it('not one the relay refuses itself (it never reaches librdkafka), nor with kafka.client kafkajs or a command that does not produce', () => {
    expect(producing('security.nonsense=1').message).toBe('kafka.producer.security.nonsense is not allowed: set kafka.ssl / kafka.saslMechanism');
    expect(producing('lingerr.ms=5', { 'kafka.client': 'kafkajs' }).message).toBe('kafka.producer passes librdkafka properties, which kafka.client kafkajs does not read');
    expect(load({ 'kafka.producer': 'lingerr.ms=5' }).kafka.producer).toEqual({ 'lingerr.ms': '5' });
  });

  it('config check refuses them too, exit 2 (it passed them: run refused them later)', () => {
    const result = runCliSync(['config', 'check', '--kafka-brokers', 'k:9092', '--kafka-producer', 'lingerr.ms=5,queue.buffering.max.kbytes=lots']);
    expect(result.status).toBe(2);
    expectProblems(result.stderr, 2, ['"lingerr.ms"', '"queue.buffering.max.kbytes"']);
  });
});

describe('config: kafka.linger against the timeouts of the producers that have one (librdkafka refuses linger.ms ≥ message.timeout.ms)', () => {
  it('at or above kafka.deliveryTimeout: refused, naming both (no checkpoint was ever written)', () => {
    const r = refusal(() => load({ 'kafka.linger': '30s' }));
    expect(r.message).toBe('kafka.linger (30s) must be shorter than kafka.deliveryTimeout (30s): librdkafka refuses a producer whose records could time out while they linger');
    expect(r.hint).toContain('--kafka-linger / OUTBOX_RELAY_KAFKA_LINGER');
    expect(load({ 'kafka.linger': '29s' }).kafka.lingerMs).toBe(29_000);
  });

  it('exactly-once: at or above the shorter delivery.transactionTimeout, naming it', () => {
    const r = refusal(() => load({ 'delivery.guarantee': 'exactly-once', 'delivery.transactionTimeout': '20s', 'kafka.linger': '25s' }));
    expect(r.message).toMatch(/^kafka.linger \(25s\) must be shorter than delivery.transactionTimeout \(20s\)/);
  });
});

describe('config: an empty environment variable', () => {
  it('is "" for a mapping column, which leaves it out (it was ignored: the default column was mapped), and unset elsewhere', () => {
    const config = load({}, { OUTBOX_RELAY_MAPPING_HEADERS: '', OUTBOX_RELAY_MAPPING_TYPE: '', OUTBOX_RELAY_SLOT: '', OUTBOX_RELAY_STATUS_INTERVAL: '' });
    expect(config.tables[0]!.columns.headers).toBeUndefined();
    expect(config.tables[0]!.columns.type).toBeUndefined();
    expect(config.slot).toBe(load({}).slot);
    expect(config.statusIntervalMs).toBe(1000);
    expect(load({}).tables[0]!.columns.headers).toBe('headers');
  });

  it('is unset for kafka.producer, whose "" would be {}: the file\'s librdkafka properties stay', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'relay.yaml');
    writeFileSync(file, 'kafka:\n  producer:\n    socket.keepalive.enable: "true"\n');
    expect(load({}, { OUTBOX_RELAY_KAFKA_PRODUCER: '' }, file).kafka.producer).toEqual({ 'socket.keepalive.enable': 'true' });
  });
});

describe('config: an OUTBOX_RELAY_* variable the relay does not read', () => {
  it('gets one warning line naming the closest variable (a typo was ignored without a word); not the ones it reads, nor the service links Kubernetes injects for a Service named outbox-relay', () => {
    const lines: string[] = [];
    const env = {
      OUTBOX_RELAY_STATUS_INTERVALL: '5s',
      OUTBOX_RELAY_KAFKA_BROKER: 'k:9092',
      OUTBOX_RELAY_CONFG: '/etc/relay.yaml',
      OUTBOX_RELAY_SLOT: 's',
      OUTBOX_RELAY_CONFIG: '/etc/relay.yaml',
      OUTBOX_RELAY_DELIVERY: 'at-most-once',
      OUTBOX_RELAY_SERVICE_HOST: '10.96.0.12',
      OUTBOX_RELAY_SERVICE_PORT: '9464',
      OUTBOX_RELAY_SERVICE_PORT_HTTP: '9464',
      OUTBOX_RELAY_PORT: 'tcp://10.96.0.12:9464',
      OUTBOX_RELAY_PORT_9464_TCP: 'tcp://10.96.0.12:9464',
      OUTBOX_RELAY_PORT_9464_TCP_PROTO: 'tcp',
      OUTBOX_RELAY_PORT_9464_TCP_PORT: '9464',
      OUTBOX_RELAY_PORT_9464_TCP_ADDR: '10.96.0.12',
    };
    const values = readEnv(env, (line) => lines.push(line));
    expect(lines).toEqual([
      // A former name gets the deprecation's line, and no other.
      'warning: OUTBOX_RELAY_DELIVERY is deprecated, use OUTBOX_RELAY_DELIVERY_GUARANTEE (setting delivery.guarantee)',
      'warning: environment variable OUTBOX_RELAY_STATUS_INTERVALL is not read by outbox-relay and is ignored; did you mean OUTBOX_RELAY_STATUS_INTERVAL (setting statusInterval)?',
      'warning: environment variable OUTBOX_RELAY_KAFKA_BROKER is not read by outbox-relay and is ignored; did you mean OUTBOX_RELAY_KAFKA_BROKERS (setting kafka.brokers)?',
      'warning: environment variable OUTBOX_RELAY_CONFG is not read by outbox-relay and is ignored; did you mean OUTBOX_RELAY_CONFIG?',
    ]);
    expect(values).toEqual({ slot: 's', 'delivery.guarantee': new UnderFormerName('OUTBOX_RELAY_DELIVERY', 'at-most-once') });
  });

  it('a variable the relay reads, written without RELAY_, gets the same line naming the one meant (it was ignored without a word); other OUTBOX_* variables (the service\'s own) get none', () => {
    const lines: string[] = [];
    const env = { OUTBOX_KAFKA_BROKERS: 'k:9092', OUTBOX_POSTGRES_URL: 'postgres://db/app', OUTBOX_DELIVERY: 'at-most-once', OUTBOX_CONFIG: '/etc/relay.yaml', OUTBOX_TABLE_NAME: 'orders_outbox', OUTBOX_RELAY_SLOT: 's' };
    const values = readEnv(env, (line) => lines.push(line));
    expect(lines).toEqual([
      'warning: environment variable OUTBOX_KAFKA_BROKERS is not read by outbox-relay and is ignored; did you mean OUTBOX_RELAY_KAFKA_BROKERS (setting kafka.brokers)?',
      'warning: environment variable OUTBOX_POSTGRES_URL is not read by outbox-relay and is ignored; did you mean OUTBOX_RELAY_POSTGRES_URL (setting postgres.url)?',
      'warning: environment variable OUTBOX_DELIVERY is not read by outbox-relay and is ignored; did you mean OUTBOX_RELAY_DELIVERY_GUARANTEE (setting delivery.guarantee)?',
      'warning: environment variable OUTBOX_CONFIG is not read by outbox-relay and is ignored; did you mean OUTBOX_RELAY_CONFIG?',
    ]);
    expect(values).toEqual({ slot: 's' });
  });
});
