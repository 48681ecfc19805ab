import { describe, expect, it } from 'vitest';
import { RelayError } from '../../src/errors.js';
import { epochError, isEpochError, transactionFlags, withFlags } from '../../src/sink/transaction-errors.js';

/** The answers both clients give to a producer whose epoch is gone (shapes as observed against Kafka 4.4). */
const RDKAFKA_FENCED = { name: 'KafkaJSError', code: -144, type: 'ERR__FENCED', message: 'transactional producer fenced by newer producer instance' };
const KAFKAJS_EPOCH = { name: 'KafkaJSNumberOfRetriesExceeded', cause: { name: 'KafkaJSProtocolError', type: 'INVALID_PRODUCER_EPOCH', code: 47 } };

describe('transactional error classification (shared by both transactional sinks)', () => {
  it('recognises the epoch errors of both clients', () => {
    expect(isEpochError(RDKAFKA_FENCED)).toBe(true);
    expect(isEpochError(KAFKAJS_EPOCH)).toBe(true);
    expect(isEpochError({ code: 7, type: 'ERR_REQUEST_TIMED_OUT' })).toBe(false);
  });

  it('a transaction younger than the timeout was fenced by another instance', () => {
    const error = epochError({ slot: 's', openedAtMs: 1_000, timeoutMs: 60_000 }, RDKAFKA_FENCED, 30_000);
    expect(error.code).toBe('PRODUCER_FENCED');
    expect(error.retriable).toBe(false);
  });

  it('a transaction older than the timeout was aborted by the broker: KAFKA_TXN_TIMEOUT, not fencing', () => {
    const error = epochError({ slot: 's', openedAtMs: 1_000, timeoutMs: 60_000 }, KAFKAJS_EPOCH, 61_000);
    expect(error.code).toBe('KAFKA_TXN_TIMEOUT');
    expect(error.message).toContain('delivery.transactionTimeout');
    expect(transactionFlags(error)).toEqual({ txnRequiresAbort: true, txnRetriable: false, txnFatal: true, ambiguous: false });
  });

  it('with no transaction open (connect), an epoch error is fencing', () => {
    expect(epochError({ slot: 's', openedAtMs: undefined, timeoutMs: 1000 }, RDKAFKA_FENCED, 1e9).code).toBe('PRODUCER_FENCED');
  });

  // Before: the flags were written into the error given, which the classification returns as it is when it is a
  // RelayError already: its other holders read flags another classification gave it.
  it('withFlags leaves the error it is given as it was, and returns one with the flags and everything else of it', () => {
    const cause = new Error('broker said no');
    const given = new RelayError('KAFKA_UNAVAILABLE', 'no leader', { retriable: true, cause, hint: 'wait', details: { topic: 'orders' } });
    const flagged = withFlags(given, { txnRequiresAbort: true, txnRetriable: false, txnFatal: false, ambiguous: true });
    expect(given.details).toEqual({ topic: 'orders' });
    expect(transactionFlags(given)).toEqual({ txnRequiresAbort: false, txnRetriable: false, txnFatal: false, ambiguous: false });
    expect(transactionFlags(flagged)).toEqual({ txnRequiresAbort: true, txnRetriable: false, txnFatal: false, ambiguous: true });
    expect(flagged).toMatchObject({ code: 'KAFKA_UNAVAILABLE', message: 'no leader', retriable: true, cause, hint: 'wait', details: { topic: 'orders' } });
  });
});
