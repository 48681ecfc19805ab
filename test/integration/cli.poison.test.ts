import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { waitUntil } from '../../stack/index.js';
import { runCli } from '../support/cli.js';
import { useDatabase } from '../support/database.js';
import { currentWalLsn, setupOutbox, slotConfirmedLsn } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { readTopic, uniqueName } from '../support/services.js';

describe('cli: the README procedure for a poison event', () => {
  const db = useDatabase('clipoison');

  it('halted relay, slot advance to the commit LSN + 1: exactly the poison transaction is skipped, later events are delivered', async () => {
    const setup = await setupOutbox(db());
    // The topic comes from the row: a row naming a topic that does not exist is a poison event.
    const insert = async (topic: string) => {
      const id = randomUUID();
      await db().query(`INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload) VALUES ($1, $2, 'a-1', 'Happened', '{}')`, [id, topic]);
      return id;
    };
    const args = [...setup.args, '--topic', '${aggregate_type}'];
    const flags = ['--postgres-url', db().url, '--slot', setup.slot, '--publication', setup.publication];

    const relay = startRelay(args);
    await relay.waitForMessage('streaming from PostgreSQL');
    const before = await insert(setup.topic);
    const afterFirst = await currentWalLsn(db());
    await waitUntil('the first event confirmed', async () => (await slotConfirmedLsn(db(), setup.slot)) >= afterFirst, 30_000);
    await insert(uniqueName('missing'));
    const halted = await relay.waitForLog((l) => l.level === 'error' && String(l.msg).startsWith('halted'), 30_000, 'the halt');
    const after = await insert(setup.topic);
    relay.signal('SIGTERM');
    await relay.exited;

    // Step 4: the commit LSN from the halt line, plus one byte.
    const commitLsn = /commit LSN ([0-9A-F]+\/[0-9A-F]+)/.exec(String(halted.err))?.[1];
    expect(commitLsn, relay.dump()).toBeDefined();
    const { rows } = await db().query<{ target: string }>('SELECT ($1::pg_lsn + 1)::text AS target', [commitLsn]);
    const target = rows[0]!.target;

    const preview = await runCli(['slot', 'advance', target, ...flags]);
    expect(preview.code).toBe(6);
    expect(preview.stderr).toContain('1 transaction(s) with 1 outbox event(s)');
    const skipped = await runCli(['slot', 'advance', target, '--yes-skip-events', ...flags]);
    expect(skipped.code, skipped.stderr).toBe(0);

    const restarted = startRelay(args);
    const records = await readTopic(setup.topic, { expected: 2 });
    expect(records.map((r) => r.key)).toEqual([before, after]);
    expect(restarted.logs.filter((l) => l.level === 'error')).toEqual([]);
  });
});
