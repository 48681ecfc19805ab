import { describe, expect, it, vi } from 'vitest';
import type { Guarantee } from '../../src/config/guarantee-config.js';
import { loadConfig } from '../../src/config/relay-config.js';
import type { RelayConfig, RetryPolicy } from '../../src/config/types.js';
import { RelayError } from '../../src/errors.js';
import type { Producing } from '../../src/sink/delivery-engine.js';
import { engineRelay } from '../support/fakes/engine-harness.js';
import { FakeSink, deferred, kafkaDown } from '../support/fakes/fake-sink.js';
import { connectFake, firstTransaction, type FakeWalsender } from '../support/fakes/replication-session.js';
import { beginMessage, commitMessage, insertMessage } from '../support/pgoutput-messages.js';

let walsender: FakeWalsender | undefined;

// The real session, its open() replaced: a ReplicationStream over a fake walsender, the slot confirmed at 0/1000.
vi.mock('../../src/pipeline/session.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/pipeline/session.js')>();
  return {
    Session: class extends actual.Session {
      override async open(): Promise<void> {
        walsender = connectFake(this, (this as unknown as { config: RelayConfig }).config, { walEnd: 0x1000n, walSenderTimeoutMs: 0 });
      }
    },
  };
});

/** at-most-once: what the check whether PostgreSQL holds a hand-off's position answers (held unless the test says otherwise). */
let positionHeld: () => Promise<boolean> = async () => true;

// at-most-once: no flush-check connection.
vi.mock('../../src/source/flush-check.js', () => ({
  ServerFlushCheck: class {
    reached(): Promise<boolean> {
      return positionHeld();
    }
    async close(): Promise<void> {}
  },
}));

/** A backoff far longer than the grace: a stop that waited for it would meet the grace instead. */
const RETRY: RetryPolicy = { initialDelayMs: 600_000, maxDelayMs: 600_000, maxDurationMs: 3_600_000, recordMaxAttempts: 3, recordMaxDurationMs: 3_600_000 };
const SHORT = 'stopping: the drain ended short of drainToLsn (delivery dropped what it had not delivered): the source transactions after deliveredLsn are streamed again at the next start';

const insert = (id: string) => insertMessage([id, 'order', id, 'OrderPlaced', '{}', '{}']);

/**
 * A relay under `guarantee` (real Relay, Session and DeliveryEngine over a FakeSink) that delivered transaction 0/2000
 * (end 0/2010), then read transaction 0/3000 (end 0/3010) to its commit, its produce left unanswered (calls[1]).
 */
async function deliveringSecond(guarantee: Guarantee, secondHeld?: () => Promise<boolean>) {
  positionHeld = async () => true;
  let asked = false;
  const flags = { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092', 'postgres.receiveTimeout': '0', 'delivery.guarantee': guarantee };
  const config = { ...loadConfig({ env: {}, flags, required: [] }), retry: RETRY, shutdownGraceMs: 4000 };
  const sink = new FakeSink();
  const producing: Producing = guarantee === 'exactly-once' ? { guarantee, sink, slot: config.slot } : { guarantee, sink };
  const { relay, running, lines, states } = engineRelay(config, sink, producing, RETRY);
  await vi.waitFor(() => expect(states).toContain('streaming'));
  const server = walsender!;
  firstTransaction(server);
  await vi.waitFor(() => expect(relay.deliveredLsn).toBe(0x2010n));
  // A keepalive past it while idle: the confirmed position is a keepalive's, past every commit read.
  server.keepalive(0x2100n);
  await vi.waitFor(() => expect(relay.deliveredLsn).toBe(0x2100n));
  sink.scriptSends('hang');
  if (secondHeld) {
    positionHeld = () => {
      asked = true;
      return secondHeld();
    };
  }
  server.xlog(beginMessage(0x3000n, 2));
  server.xlog(insert('e-2'));
  server.xlog(commitMessage(0x3000n, 0x3010n));
  // Its produce under way, or (secondHeld) its hand-off waiting to be shown PostgreSQL holds its position.
  if (secondHeld) await vi.waitFor(() => expect(asked).toBe(true));
  else await vi.waitFor(() => expect(sink.calls.map((c) => c.ids)).toEqual([['e-1'], ['e-2']]));
  // The stop's drain names the second transaction's end.
  const stopping = relay.stop();
  await vi.waitFor(() => expect(lines.find((l) => l.msg === 'stopping: draining in-flight events')).toMatchObject({ drainToLsn: '0/3010' }));
  return { stopping, running, lines, sink };
}

describe('Relay stop: a drain counted as drained that ended short of drainToLsn says so', () => {
  it.each([
    ['Kafka fails the produce during the drain (the abort follows)', kafkaDown()],
    ['Kafka refuses the record during the drain (the stop cuts its search short)', new RelayError('RECORD_TOO_LARGE', 'MESSAGE_TOO_LARGE (fake)')],
  ])('exactly-once, %s: one warn line naming both positions; stopped at the last commit', async (_case, error) => {
    const { stopping, running, lines, sink } = await deliveringSecond('exactly-once');
    sink.calls[1]!.answer.reject(error);
    await stopping;
    expect((await running).state).toBe('stopped');
    expect(sink.commits.map((c) => c.lsn)).toEqual([0x2010n]);
    // Before: nothing said the drain stopped short of the 0/3010 its line named.
    expect(lines.filter((l) => l.msg === SHORT)).toEqual([expect.objectContaining({ level: 40, drainToLsn: '0/3010', deliveredLsn: '0/2100' })]);
    expect(lines.filter((l) => /grace period over/.test(l.msg))).toEqual([]);
    expect(lines.at(-1)).toMatchObject({ msg: 'stopped', confirmedLsn: '0/2100' });
  });

  it('at-most-once, a hand-off withheld during the drain (its session ended before PostgreSQL was shown to hold its position): the same line', async () => {
    const answer = deferred();
    const { stopping, running, lines, sink } = await deliveringSecond('at-most-once', () => answer.promise.then(() => false));
    answer.resolve();
    await stopping;
    expect((await running).state).toBe('stopped');
    expect(sink.calls.map((c) => c.ids)).toEqual([['e-1']]);
    expect(lines.filter((l) => l.msg === SHORT)).toEqual([expect.objectContaining({ level: 40, drainToLsn: '0/3010', deliveredLsn: '0/2100' })]);
  });

  it.each<Guarantee>(['at-least-once', 'at-most-once', 'exactly-once'])('%s, a drain that delivered everything (past a keepalive position): no such line', async (guarantee) => {
    const { stopping, running, lines, sink } = await deliveringSecond(guarantee);
    sink.calls[1]!.answer.resolve();
    await stopping;
    expect((await running).state).toBe('stopped');
    expect(lines.map((l) => l.msg)).not.toContain(SHORT);
    expect(lines.at(-1)).toMatchObject({ msg: 'stopped', confirmedLsn: '0/3010' });
  });
});
