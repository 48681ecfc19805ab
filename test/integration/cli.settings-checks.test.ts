import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { useDatabase } from '../support/database.js';
import { stack, uniqueName } from '../support/services.js';

describe('cli: settings checked before anything connects or is created', () => {
  const db = useDatabase('settingchecks');
  const objects = async (publication: string, slot: string) => ({
    publications: (await db().query('SELECT 1 FROM pg_publication WHERE pubname = $1', [publication])).rowCount,
    slots: (await db().query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot])).rowCount,
  });

  it('setup with a slot name PostgreSQL would refuse, or a topic that can never be legal: exit 2, the setting named, nothing created', async () => {
    const publication = uniqueName('pub');
    for (const [slot, extra, expected] of [
      ['Orders_Slot', [], /invalid flag --slot: "Orders_Slot"; expected a replication slot name: lower-case letters, digits and _, at most 63 characters/],
      ['bad$slot', [], /invalid flag --slot: "bad\$slot"/],
      ['s'.repeat(64), [], /invalid flag --slot/],
      [uniqueName('slot'), ['--topic', 'bad topic'], /topic: "bad topic" has " ", which a Kafka topic name cannot contain/],
    ] as const) {
      const result = await runCli(['setup', '--postgres-url', db().url, '--slot', slot, '--publication', publication, ...extra]);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(expected);
      expect(result.stderr).toContain('fix:');
      expect(await objects(publication, slot)).toEqual({ publications: 0, slots: 0 });
    }
  });

  it('run refuses at start: an illegal topic template or route topic (naming the setting), brokers without a port', async () => {
    const base = ['run', '--postgres-url', db().url, '--slot', uniqueName('slot'), '--publication', uniqueName('pub')];
    const brokers = ['--kafka-brokers', stack().brokers.join(',')];
    const cases: [string[], RegExp][] = [
      [[...brokers, '--topic', 'events/${aggregate_type}'], /^outbox-relay: CONFIG_INVALID: topic: "events\/\$\{aggregate_type\}" has "\/", which a Kafka topic name cannot contain\n {2}fix: use 1-249 characters/],
      [[...brokers, '--routes', 'Order*=bad topic'], /^outbox-relay: CONFIG_INVALID: routes\.0\.topic: "bad topic" has " "/],
      [['--kafka-brokers', '127.0.0.1'], /invalid flag --kafka-brokers: "127.0.0.1"; expected host:port for every broker, with a port from 1 to 65535 \(not "127.0.0.1"\)/],
      [['--kafka-brokers', `${stack().brokers[0]},kafka:99999`], /\(not "kafka:99999"\)/],
    ];
    for (const [args, expected] of cases) {
      const result = await runCli([...base, ...args]);
      expect(result.code, result.stdout + result.stderr).toBe(2);
      expect(result.stderr).toMatch(expected);
    }
  });

  it('validation messages say "expected" once', async () => {
    const result = await runCli(['run', '--postgres-url', db().url, '--kafka-brokers', stack().brokers.join(','), '--tables', '[{"topic": "t"}]']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('expected 0.table: string, received undefined');
    expect(result.stderr.match(/expected/g)).toHaveLength(1);
  });

  it('a statement PostgreSQL refuses is reported with its SQLSTATE and a fix', async () => {
    await db().query('CREATE VIEW outbox_view AS SELECT * FROM outbox');
    const result = await runCli(['publication', 'create', '--postgres-url', db().url, '--publication', uniqueName('pub'), '--table', 'public.outbox_view']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('PostgreSQL refused the operation (SQLSTATE 22023): cannot add relation "outbox_view" to publication (This operation is not supported for views.)');
    expect(result.stderr).toContain('fix: ');
  });
});
