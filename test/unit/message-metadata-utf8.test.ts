import { describe, expect, it } from 'vitest';
import { AckTracker } from '../../src/checkpoint/ack-tracker.js';
import type { RelayConfig } from '../../src/config/types.js';
import { RelayError } from '../../src/errors.js';
import { MessageMapper } from '../../src/route/message-mapper.js';

/**
 * pg_logical_emit_message(true, prefix, text) writes the text's bytes in the database's encoding, and pgoutput sends
 * a Message's content as is (no client_encoding conversion, unlike a row's values). In a LATIN1 database the
 * metadata line `{"id":"Müller-1","key":"Müller"}` arrives as 4d fc 6c…, measured on PostgreSQL 15.
 */
describe('a logical message whose metadata line is not UTF-8', () => {
  const txn = new AckTracker(0n).begin(0x19c44e8n, Date.parse('2024-01-01T00:00:00Z'), 753);
  const config: NonNullable<RelayConfig['messages']> = { prefixes: ['outbox'], topic: 'events', envelope: { mode: 'none' } };
  const latin1 = (meta: string) => ({ tag: 'message' as const, transactional: true, lsn: 1n, prefix: 'outbox', content: Buffer.concat([Buffer.from(meta, 'latin1'), Buffer.from('\n{"a":1}')]) });

  it('is a record error naming the message, not two events with one id (Müller and Mäller both M\uFFFDller)', () => {
    const mapper = new MessageMapper(config);
    for (const name of ['Müller', 'Mäller']) {
      expect(() => mapper.map(latin1(`{"id":"${name}-1","type":"T","key":"${name}"}`), txn), name).toThrow(
        expect.objectContaining({ code: 'RECORD_INVALID', message: expect.stringMatching(/prefix "outbox", commit LSN 0\/19C44E8\): the metadata line is not UTF-8/) }),
      );
    }
  });

  it('the dead letter keeps the content byte for byte', () => {
    const mapper = new MessageMapper(config);
    const msg = latin1('{"id":"Müller-1","type":"T"}');
    let error: unknown;
    try {
      mapper.map(msg, txn);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(RelayError);
    const event = mapper.unmappable(msg, txn, error as RelayError);
    expect(event.value!.equals(msg.content)).toBe(true);
  });

  it('UTF-8 metadata still maps, U+FFFD written as such included', () => {
    const content = Buffer.from('{"id":"Müller-1","type":"T","key":"\uFFFD"}\n{}');
    const event = new MessageMapper(config).map({ tag: 'message', transactional: true, lsn: 1n, prefix: 'outbox', content }, txn);
    expect([event.eventId, event.key]).toEqual(['Müller-1', '\uFFFD']);
  });
});
