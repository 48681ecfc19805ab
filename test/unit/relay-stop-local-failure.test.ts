import { describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/relay-config.js';
import type { RelayConfig } from '../../src/config/types.js';
import { RelayError } from '../../src/errors.js';
import type { Lsn } from '../../src/lsn.js';
import type { RelayState } from '../../src/pipeline/observer.js';
import { capturingLogger, idleDelivery, relayConfig } from '../support/fakes/relay-setup.js';
import { OUTBOX_COLUMNS, connectFake, firstTransaction, type FakeWalsender } from '../support/fakes/replication-session.js';
import { beginMessage, relationMessage } from '../support/pgoutput-messages.js';

/** The walsender of the session the relay opened last. */
let walsender: FakeWalsender | undefined;

// The real session, its open() (connection and pre-flight) replaced: a ReplicationStream over a fake walsender and
// the slot as pre-flight finds it, public.outbox as relation 0x4001.
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

const { Relay } = await import('../../src/pipeline/relay.js');

/**
 * A streaming relay whose session fails locally (`fail`) while Kafka still holds an event: the session stops reading
 * and waits up to shutdownGrace for the delivery before it ends with the failure. A SIGTERM's stop comes during
 * that wait. run()'s outcome, the lines at info and above, the relay's last state.
 */
async function stopDuringLocalFailure(fail: (relay: InstanceType<typeof Relay>) => void) {
  let idle: Promise<void> = Promise.resolve();
  const states: RelayState[] = [];
  // A grace and a backoff longer than the test: only the delivery ends the drains.
  const retry = relayConfig({ initialDelayMs: 600_000, maxDelayMs: 600_000, maxDurationMs: 600_000 }) as { retry: unknown };
  const config = { ...loadConfig({ env: {}, flags: { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092', 'postgres.receiveTimeout': '0' }, required: [] }), retry: retry.retry, shutdownGraceMs: 600_000 };
  const { logger, lines } = capturingLogger('info');
  const relay = new Relay(config as never, {
    logger,
    sink: { connect: async () => undefined, send: async () => undefined, close: async () => undefined } as never,
    createDelivery: () => ({ ...(idleDelivery() as object), whenIdle: () => idle }),
    reportPosition: (lsn: Lsn) => lsn,
    observer: { stateChanged: (state: RelayState) => void states.push(state) },
  } as never);
  const outcome = relay.run();
  await vi.waitFor(() => expect(states).toContain('streaming'));
  // An event handed over, not yet acknowledged: the session's end waits for it.
  let acknowledged!: () => void;
  idle = new Promise((resolve) => (acknowledged = resolve));
  firstTransaction(walsender!, 'o-1');
  fail(relay);
  // The session stopped reading and waits for the delivery; the operator stops the relay meanwhile.
  await new Promise((resolve) => setTimeout(resolve, 20));
  const stopping = relay.stop();
  await vi.waitFor(() => expect(lines.map((l) => l.msg)).toContain('stopping: draining in-flight events'));
  acknowledged();
  await stopping;
  return { outcome: await outcome, lines, state: relay.currentState };
}

describe('Relay, a stop during the drain of a local failure of the session', () => {
  it('the publication watch finds the table unpublished (PG_TABLE_NOT_PUBLISHED): the exit is the failure\'s, one "giving up" line with its code and fix', async () => {
    const refused = new RelayError('PG_TABLE_NOT_PUBLISHED', 'table public.outbox is not in publication p (fake)', { hint: 'ALTER PUBLICATION p ADD TABLE public.outbox (fake)' });
    const { outcome, lines, state } = await stopDuringLocalFailure((relay) => relay.sourceRefused(refused));
    // Before: outcome 'stopped' (exit 0), the state 'stopped' and no error line: the failure was never logged.
    expect(outcome).toMatchObject({ state: 'failed', error: { code: 'PG_TABLE_NOT_PUBLISHED' } });
    expect(lines.filter((l) => l.level >= 50)).toMatchObject([{ code: 'PG_TABLE_NOT_PUBLISHED', fix: refused.hint, msg: 'giving up' }]);
    expect(lines.map((l) => l.msg)).not.toContain('stopped');
    expect(state).toBe('failed');
  });

  it('a rename of the outbox table (SCHEMA_TABLE_RENAMED): the halt is the outcome (exit 1), its error line names the rename and its fix', async () => {
    const { outcome, lines, state } = await stopDuringLocalFailure(() => {
      walsender!.xlog(beginMessage(0x3000n, 2));
      walsender!.xlog(relationMessage('outbox_v2', OUTBOX_COLUMNS));
    });
    expect(outcome).toMatchObject({ state: 'halted', error: { code: 'SCHEMA_TABLE_RENAMED' } });
    expect(lines.filter((l) => l.level >= 50)).toMatchObject([{ code: 'SCHEMA_TABLE_RENAMED', fix: expect.stringContaining('public.outbox_v2'), msg: expect.stringMatching(/^halted: /) }]);
    expect(state).toBe('halted');
  });
});
