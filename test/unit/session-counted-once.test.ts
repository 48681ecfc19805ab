import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/relay-config.js';
import { RelayMetrics } from '../../src/metrics/relay-metrics.js';
import { RepeatedLines } from '../../src/outage-log.js';
import { Session } from '../../src/pipeline/session.js';
import type { Delivery } from '../../src/sink/delivery.js';
import { metricValue } from '../support/ops-http.js';
import { OUTBOX_COLUMNS, connectFake } from '../support/fakes/replication-session.js';
import { beginMessage, commitMessage, insertMessage, relationMessage } from '../support/pgoutput-messages.js';

const silent = pino({ level: 'silent' });
const config = loadConfig({ env: {}, flags: { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092', 'filter.excludeTypes': 'Ignored' }, required: [] });
const delivery = { openSession: () => undefined, endSession: () => undefined, committed: () => undefined, push: () => true } as unknown as Delivery;
const idle = { inFlight: { events: 0, bytes: 0, windowFullMs: 0, windowFullSinceMs: undefined } };

/** A session on a fake walsender from the slot's position (0/1000), as the relay starts each one; its stream by message. */
function startSession(metrics: RelayMetrics, countedBefore: bigint) {
  const session = new Session(config, delivery, silent, new RepeatedLines(silent), metrics, () => undefined);
  const server = connectFake(session, config, { walEnd: 0x5000n, walSenderTimeoutMs: 0 });
  session.start({ lsn: 0n, timeline: undefined }, undefined, 0n, countedBefore);
  server.xlog(relationMessage('outbox', OUTBOX_COLUMNS));
  return { session, send: (...messages: Buffer[]) => messages.forEach((m) => server.xlog(m)) };
}

const filteredRow = (id: string) => insertMessage([id, 'order', 'o-1', 'Ignored', '{}', '{}']);

describe('Session, the metrics of a transaction streamed again', () => {
  it('counts its filtered rows and its source delay once: not again when the next session streams it again, nor the rows read before a cut', async () => {
    const metrics = new RelayMetrics();
    // Two transactions of filtered rows only: nothing waits for Kafka, yet the second is cut off inside.
    const first = startSession(metrics, 0n);
    first.send(beginMessage(0x2000n, 1), filteredRow('e-1'), filteredRow('e-2'), commitMessage(0x2000n, 0x2010n));
    first.send(beginMessage(0x3000n, 2), filteredRow('e-3'));
    await first.session.close();

    // The connection was lost: the next session starts where the slot is, and PostgreSQL sends both again.
    const second = startSession(metrics, first.session.countedThrough);
    second.send(beginMessage(0x2000n, 1), filteredRow('e-1'), filteredRow('e-2'), commitMessage(0x2000n, 0x2010n));
    second.send(beginMessage(0x3000n, 2), filteredRow('e-3'), filteredRow('e-4'), commitMessage(0x3000n, 0x3010n));
    await second.session.close();

    const text = await metrics.render(idle);
    // Before: 7 rows (2 + 1 in the first session, 2 + 2 in the second) and 4 transactions.
    expect(metricValue(text, 'outbox_relay_filtered_total', { table: 'public.outbox' })).toBe(4);
    expect(metricValue(text, 'outbox_relay_source_delay_seconds_count')).toBe(2);
    expect(second.session.countedThrough).toBe(0x3010n);
  });
});
