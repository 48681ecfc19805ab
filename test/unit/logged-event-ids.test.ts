import { describe, expect, it } from 'vitest';
import { AckTracker } from '../../src/checkpoint/ack-tracker.js';
import { errorJson } from '../../src/cli/exit.js';
import { RelayError } from '../../src/errors.js';
import { RelayHealth } from '../../src/http/health.js';
import { Relay } from '../../src/pipeline/relay.js';
import type { OutboxEvent } from '../../src/route/event.js';
import { idFields } from '../../src/route/logged-id.js';
import { DeadLetters } from '../../src/sink/dead-letter.js';
import { capturingLogger, relayWithDeliveryCallbacks } from '../support/fakes/relay-setup.js';

/** An id of a text column, of a megabyte: far longer than a log shipper takes a line. */
const longId = `${'é'.repeat(400)}${'x'.repeat(1_000_000)}`;
const cut = { eventId: `${'é'.repeat(300)}…`, eventIdLength: longId.length };
const sha256Hex = /^[0-9a-f]{64}$/;
const txn = new AckTracker(0n).begin(0x2000n, 0, 7);
const event = (eventId: string): OutboxEvent => ({ topic: 'orders', key: 'k', value: Buffer.from('{}'), headers: {}, eventId, size: 10, txn });
const kafka = { send: <T>(sending: Promise<T>) => sending, backOff: async () => false };

describe('an event id in log fields, /readyz and the halt report: whole up to 300 characters, else its start, length and SHA-256', () => {
  // The digest was computed apart (Python's hashlib over the UTF-8), as PostgreSQL's sha256(convert_to(id, 'UTF8')) gives it.
  it('idFields: a short id whole; a long one cut, with its length and the SHA-256 of its UTF-8', () => {
    expect(idFields('e-1')).toEqual({ eventId: 'e-1' });
    expect(idFields('a'.repeat(300))).toEqual({ eventId: 'a'.repeat(300) });
    expect(idFields('é'.repeat(400), 'firstEventId')).toEqual({
      firstEventId: `${'é'.repeat(300)}…`,
      firstEventIdLength: 400,
      firstEventIdSha256: 'fc377241c748e4454a131383f00393cbfaec45de7f7b748f83fce9b865b15abd',
    });
  });

  it("the halt's error line and the record retry line carry the id cut; the details keep it whole", async () => {
    const { logger, lines } = capturingLogger('debug');
    const { relay, callbacks } = relayWithDeliveryCallbacks(Relay, logger);
    const refused = new RelayError('RECORD_TOO_LARGE', 'too large (fake)');
    callbacks.recordRetrying(event(longId), refused, 1, 100, 'halt');
    const halt = new RelayError('RECORD_TOO_LARGE', 'too large (fake)', { details: { eventId: longId, lsn: '0/2000', firstEventId: longId, lastEventId: 'e-2' } });
    callbacks.stopped(halt);
    expect(await relay.run()).toMatchObject({ state: 'halted' });
    expect(halt.details.eventId).toBe(longId);
    const retry = lines.find((line) => String(line.msg).startsWith('Kafka rejected the record'))!;
    const halted = lines.find((line) => String(line.msg).startsWith('halted:'))!;
    for (const line of [retry, halted]) {
      expect(line).toMatchObject(cut);
      expect(line.eventIdSha256).toMatch(sha256Hex);
      expect(JSON.stringify(line).length).toBeLessThan(5_000);
    }
    expect(halted).toMatchObject({ lsn: '0/2000', firstEventId: cut.eventId, firstEventIdLength: longId.length, lastEventId: 'e-2' });
    expect(halted.lastEventIdLength).toBeUndefined();
  });

  it('the "event dead-lettered" line carries the id cut; the dead letter keeps the record whole', async () => {
    const { logger, lines } = capturingLogger('info');
    const sent: unknown[] = [];
    const sink = { connect: async () => undefined, close: async () => undefined, send: async (records: readonly unknown[]) => void sent.push(...records) };
    const dlq = new DeadLetters(sink as never, '${topic}.dlq', logger);
    expect(await dlq.handle(event(longId), new RelayError('RECORD_TOO_LARGE', 'too large'), new AbortController().signal, kafka)).toBe('skip');
    expect(sent).toHaveLength(1);
    const line = lines.find((l) => l.msg === 'event dead-lettered: continuing')!;
    expect(line).toMatchObject({ ...cut, lsn: '0/2000', deadLetterTopic: 'orders.dlq' });
    expect(line.eventIdSha256).toMatch(sha256Hex);
  });

  it("/readyz's halt (and status's halt_* lines) carry the id cut, its length and SHA-256; a short id whole", () => {
    const health = new RelayHealth(1000);
    const view = { currentState: 'halted', reportedLsn: 0n, deliveredLsn: 0n, reconnectCause: undefined, outageCauses: [], inFlight: { events: 0, bytes: 0, windowFullMs: 0, windowFullSinceMs: undefined } } as const;
    health.halted(new RelayError('RECORD_TOO_LARGE', 'too large', { details: { eventId: longId, lsn: '0/2000' } }));
    const halt = health.readiness(view).halt!;
    expect(halt).toMatchObject({ ...cut, commitLsn: '0/2000' });
    expect(halt.eventIdSha256).toMatch(sha256Hex);
    expect(JSON.stringify(halt).length).toBeLessThan(5_000);
    health.halted(new RelayError('TOPIC_NOT_FOUND', 'no topic', { details: { eventId: 'e-1', lsn: '0/2000' } }));
    expect(Object.keys(health.readiness(view).halt!)).toEqual(['code', 'message', 'fix', 'eventId', 'commitLsn', 'at']);
  });

  it("a command's --json error carries the ids of its details cut", () => {
    const json = errorJson(new RelayError('RECORD_INVALID', 'bad row', { details: { eventId: longId } }));
    expect(json.details).toMatchObject(cut);
    expect(JSON.stringify(json).length).toBeLessThan(5_000);
  });

  it('the SHA-256 is of the whole id', () => {
    const other = `${longId.slice(0, -1)}y`;
    expect(idFields(other).eventIdSha256).not.toBe(idFields(longId).eventIdSha256);
    expect(idFields(other).eventId).toBe(idFields(longId).eventId);
  });
});
