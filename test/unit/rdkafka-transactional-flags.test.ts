import { createRequire } from 'node:module';
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type { KafkaCheckpointStore } from '../../src/checkpoint/kafka-checkpoint-store.js';
import type { KafkaSettings } from '../../src/config/types.js';
import type { RelayError } from '../../src/errors.js';
import { namingRefusedTopics } from '../../src/sink/kafka-errors.js';
import { transactionFlags } from '../../src/sink/transaction-errors.js';
import { printedAclCommands } from '../support/printed-command.js';

/**
 * What the installed client's KafkaJS-compatible layer rejects commit() with: the native addon reports a failed
 * transactional call as { message, code, isFatal, isRetriable, isTxnRequiresAbort } (src/errors.cc), the binding
 * wraps it in a LibrdKafkaError (which keeps isFatal/isRetriable/isTxnRequiresAbort), and the KafkaJS layer
 * converts that with its own createKafkaJsErrorFromLibRdKafkaError, which reads `retriable`, `fatal`, `abortable`.
 */
const require = createRequire(import.meta.url);
const LibrdKafkaError = require('@confluentinc/kafka-javascript/lib/error.js') as { create(e: object): Error };
const { createKafkaJsErrorFromLibRdKafkaError } = require('@confluentinc/kafka-javascript/lib/kafkajs/_common.js') as { createKafkaJsErrorFromLibRdKafkaError(e: Error): Error };
const nativeTxnError = (code: number, message: string, flags: { isFatal: boolean; isRetriable: boolean; isTxnRequiresAbort: boolean }) =>
  createKafkaJsErrorFromLibRdKafkaError(LibrdKafkaError.create({ message, code, ...flags }));

let commitError: Error | undefined;
let sendError: Error | undefined;
/** What the checkpoint record's send() rejects with. */
let checkpointSendError: Error | undefined;
/** The client's log watch (createRdKafkaClient's onLog): librdkafka's log lines reach it. */
let logLine: ((fac: string, message: string) => void) | undefined;
let abortError: Error | undefined;
let connectError: Error | undefined;
let aborts = 0;
/** connect() registers the transactional id: each one fences the producer that held it before. */
let registrations = 0;
const producer = {
  connect: async () => {
    if (connectError) throw connectError;
    registrations++;
  },
  disconnect: async () => undefined,
  _getInternalClient: () => ({ disconnect: (_flushMs: number, cb: () => void) => cb() }),
  transaction: async () => producer,
  sendBatch: async () => {
    if (sendError) throw sendError;
    return [];
  },
  send: async () => {
    if (checkpointSendError) throw checkpointSendError;
    return [];
  },
  commit: async () => {
    if (commitError) throw commitError;
  },
  abort: async () => {
    aborts++;
    if (abortError) throw abortError;
  },
};

vi.mock('../../src/sink/rdkafka-client.js', async (original) => ({
  ...(await original<typeof import('../../src/sink/rdkafka-client.js')>()),
  createRdKafkaClient: async (...args: unknown[]) => {
    logLine = args[4] as typeof logLine;
    return {
      admin: () => ({ connect: async () => undefined, disconnect: async () => undefined, fetchTopicMetadata: async () => [] }),
      producer: () => producer,
    };
  },
}));

const { RdKafkaTransactionalSink } = await import('../../src/sink/rdkafka-transactional-sink.js');

const settings = { brokers: ['b:9092'], clientId: 'test', requestTimeoutMs: 30_000, deliveryTimeoutMs: 30_000, compression: 'none', lingerMs: 1, batchSizeBytes: 1_000_000, producer: {} } as unknown as KafkaSettings;
const store = { topic: 'outbox-relay.checkpoints', ensureTopic: async () => undefined, message: () => ({ key: 's', value: Buffer.from('{}') }) } as unknown as KafkaCheckpointStore;
const checkpoint = { slot: 's', lsn: 0x100n, commitTimeMs: 0, writtenAtMs: 0, guarantee: 'exactly-once' as const };
const record = { topic: 'orders', key: 'k', value: Buffer.from('v'), headers: {} };

/** A sink that claimed the slot's transactional id and has a Kafka transaction open, one record in it. */
async function openTransaction(transactionTimeoutMs: number) {
  const sink = new RdKafkaTransactionalSink(settings, 's', transactionTimeoutMs, store, pino({ level: 'silent' }));
  await sink.connect();
  await sink.claim();
  await sink.send([record]);
  return sink;
}

/** The RelayError `promise` rejects with, or undefined. */
const rejectionOf = (promise: Promise<void>) => promise.then(() => undefined, (err: RelayError) => err);

describe('RdKafkaTransactionalSink: the flags of a failed transactional call, through the installed client', () => {
  it('a commit that timed out (librdkafka: retriable, the commit continues in the background) may be repeated', async () => {
    const sink = await openTransaction(60_000);
    commitError = nativeTxnError(-185, 'Local: Timed out', { isFatal: false, isRetriable: true, isTxnRequiresAbort: false });
    const error = await rejectionOf(sink.commit(checkpoint));
    expect(error).toBeDefined();
    expect(transactionFlags(error!).txnRetriable).toBe(true);
    commitError = undefined;
    await sink.commit(checkpoint);
  });
});

describe('RdKafkaTransactionalSink: a transaction older than delivery.transactionTimeout whose epoch ended', () => {
  it('the abort lets the producer go without registering the transactional id again (that would fence a new holder of the slot); the next claim registers it', async () => {
    const sink = await openTransaction(1);
    await new Promise((r) => setTimeout(r, 5));
    sendError = nativeTxnError(-144, 'Local: This instance has been fenced by a newer instance', { isFatal: true, isRetriable: false, isTxnRequiresAbort: false });
    const error = await rejectionOf(sink.send([record]));
    sendError = undefined;
    expect(error?.code).toBe('KAFKA_TXN_TIMEOUT');
    const before = registrations;
    await sink.abort(() => 'produce');
    // Before: a new producer registered the id here, without the slot's lock.
    expect(registrations).toBe(before);
    await sink.claim();
    expect(registrations).toBe(before + 1);
    await sink.send([record]);
    await sink.commit(checkpoint);
  });
});

describe('RdKafkaTransactionalSink: an abort the engine makes with everything uncommitted dropped, whose session may have ended', () => {
  const failures = [
    ['the abort fails (timed out)', async () => void (abortError = nativeTxnError(-185, 'Local: Timed out', { isFatal: false, isRetriable: true, isTxnRequiresAbort: false }))],
    [
      'the producer is unusable (_STATE)',
      async (sink: InstanceType<typeof RdKafkaTransactionalSink>) => {
        sendError = nativeTxnError(-172, 'Local: Erroneous state', { isFatal: false, isRetriable: false, isTxnRequiresAbort: false });
        await rejectionOf(sink.send([record]));
        sendError = undefined;
      },
    ],
  ] as const;

  // Only a claim follows: the engine dropped everything uncommitted (the session may have ended, its slot's lock
  // released); a produce follows: a probe of the refused record's request, in the session.
  const cases = failures.flatMap(([failure, fail]) => (['claim', 'produce'] as const).map((next) => [failure, next, fail] as const));

  it.each(cases)('%s, then %s: let go without registering the transactional id before a claim (that would fence a new holder of the slot), replaced before a produce', async (_case, next, fail) => {
    const sink = await openTransaction(60_000);
    await fail(sink);
    const before = registrations;
    await sink.abort(() => next);
    abortError = undefined;
    if (next === 'claim') {
      // Before: a new producer registered the id here, also once the session had let go of the slot's lock.
      expect(registrations).toBe(before);
      await sink.claim();
    }
    expect(registrations).toBe(before + 1);
    await sink.send([record]);
    await sink.commit(checkpoint);
  });
});

describe('RdKafkaTransactionalSink: what follows an abort is asked once the abort failed, not when it began', () => {
  // A refused record's isolation: a produce follows when its abort begins; the session ends while the abort waits
  // for the broker (its slot's lock released), and the abort then fails.
  it('the session ended while the abort waited: let go without registering the transactional id (that would fence a new holder of the slot)', async () => {
    const sink = await openTransaction(60_000);
    abortError = nativeTxnError(-185, 'Local: Timed out', { isFatal: false, isRetriable: true, isTxnRequiresAbort: false });
    let next: 'produce' | 'claim' = 'produce';
    const before = registrations;
    const aborting = sink.abort(() => next);
    next = 'claim';
    await aborting;
    abortError = undefined;
    expect(registrations).toBe(before);
    await sink.claim();
    expect(registrations).toBe(before + 1);
  });
});

describe('RdKafkaTransactionalSink: records that fail saying only "Fatal error" or "Purged in queue"', () => {
  // What Kafka 4.4's abort of a timed-out transaction gives with librdkafka 2.15 (delivery.transaction-timeout):
  // the producer turns fatal with _FENCED, its records fail with ERR__FATAL, or purged while still queued.
  const fencedAbort = () => nativeTxnError(-144, 'Local: This instance has been fenced by a newer instance', { isFatal: true, isRetriable: false, isTxnRequiresAbort: false });
  const noCause = [
    [-150, 'Local: Fatal error'],
    [-152, 'Local: Purged in queue'],
  ] as const;

  it.each(noCause)('%i, the transaction older than delivery.transactionTimeout: the abort says why, KAFKA_TXN_TIMEOUT (not an outage); one abort, and the producer is let go', async (code, message) => {
    const sink = await openTransaction(1);
    await new Promise((r) => setTimeout(r, 5));
    sendError = nativeTxnError(code, message, { isFatal: false, isRetriable: false, isTxnRequiresAbort: false });
    abortError = fencedAbort();
    const abortsBefore = aborts;
    const errors = await Promise.all([rejectionOf(sink.send([record])), rejectionOf(sink.send([record]))]);
    sendError = undefined;
    expect(errors.map((e) => e?.code)).toEqual(['KAFKA_TXN_TIMEOUT', 'KAFKA_TXN_TIMEOUT']);
    const before = registrations;
    await sink.abort(() => 'produce');
    abortError = undefined;
    expect(aborts - abortsBefore).toBe(1);
    expect(registrations).toBe(before);
    await sink.claim();
    await sink.send([record]);
    await sink.commit(checkpoint);
  });

  it.each(noCause)('%i, the transaction younger than the timeout: PRODUCER_FENCED', async (code, message) => {
    const sink = await openTransaction(60_000);
    sendError = nativeTxnError(code, message, { isFatal: false, isRetriable: false, isTxnRequiresAbort: false });
    abortError = fencedAbort();
    const error = await rejectionOf(sink.send([record]));
    sendError = undefined;
    abortError = undefined;
    expect(error?.code).toBe('PRODUCER_FENCED');
  });

  it('purged by an abort that succeeds (nothing fatal): the error as it is, and the transaction counts as aborted', async () => {
    const sink = await openTransaction(60_000);
    sendError = nativeTxnError(-152, 'Local: Purged in queue', { isFatal: false, isRetriable: false, isTxnRequiresAbort: false });
    const abortsBefore = aborts;
    const error = await rejectionOf(sink.send([record]));
    sendError = undefined;
    expect(error?.code).toBe('KAFKA_UNAVAILABLE');
    await sink.abort(() => 'produce');
    expect(aborts - abortsBefore).toBe(1);
    await sink.send([record]);
    await sink.commit(checkpoint);
  });
});

// The checkpoint record goes in the transaction with the events: a principal without WRITE on the checkpoint topic
// had every transaction refused, told as "Purged in queue" (an outage, no fix) or with the fix of every refusal
// (WRITE and DESCRIBE on "the topics"), never naming the checkpoint topic.
describe('RdKafkaTransactionalSink: a topic the transaction coordinator refused (TOPIC_AUTHORIZATION_FAILED)', () => {
  const purged = () => nativeTxnError(-152, 'Local: Purged in queue', { isFatal: false, isRetriable: false, isTxnRequiresAbort: false });
  // librdkafka's log line for it (rd_kafka_txn_handle_AddPartitionsToTxn); nothing else names the topic.
  const refusedLine = (topic: string) => logLine?.('ADDPARTS', `[thrd:main]: b:9092/1: Failed to add partition "${topic}" [0] to transaction: Broker: Topic authorization failed`);
  const checkpointSetting = 'checkpoint.topic (--checkpoint-topic / OUTBOX_RELAY_CHECKPOINT_TOPIC)';
  // The printed grant's words before its --topic: kafka.brokers (kafka-acls.sh has no default), WRITE and DESCRIBE.
  const grant = ['kafka-acls.sh', '--bootstrap-server', 'b:9092', '--add', '--allow-principal', '<principal>', '--operation', 'Write', '--operation', 'Describe'];

  it('the checkpoint topic, its record purged and the abort fine: KAFKA_AUTH naming that topic and its setting, not an outage; the next transaction is not blamed', async () => {
    const sink = await openTransaction(60_000);
    refusedLine('outbox-relay.checkpoints');
    checkpointSendError = purged();
    const error = await rejectionOf(sink.commit(checkpoint));
    checkpointSendError = undefined;
    expect(error).toMatchObject({ code: 'KAFKA_AUTH', retriable: true, details: { topics: ['outbox-relay.checkpoints'] } });
    expect(error!.message).toBe('Kafka refused access: Broker: Topic authorization failed, adding "outbox-relay.checkpoints" to the Kafka transaction');
    expect(error!.hint).toContain(`WRITE and DESCRIBE on the checkpoint topic "outbox-relay.checkpoints" (${checkpointSetting}; `);
    expect(printedAclCommands(error!.hint!)).toEqual([[...grant, '--topic', 'outbox-relay.checkpoints']]);
    // Not a commit to repeat: the transaction is aborted.
    expect(transactionFlags(error!).txnRetriable).toBe(false);
    // The engine names a refused send's topics itself: this one's are kept.
    expect(namingRefusedTopics(error!, [record], settings.brokers)).toBe(error);
    await sink.abort(() => 'produce');
    await sink.send([record]);
    checkpointSendError = purged();
    expect((await rejectionOf(sink.commit(checkpoint)))?.code).toBe('KAFKA_UNAVAILABLE');
    checkpointSendError = undefined;
  });

  it('an event topic, its records purged: KAFKA_AUTH naming that topic only', async () => {
    const sink = await openTransaction(60_000);
    refusedLine('orders');
    sendError = purged();
    const error = await rejectionOf(sink.send([record]));
    sendError = undefined;
    expect(error).toMatchObject({ code: 'KAFKA_AUTH', details: { topics: ['orders'] } });
    expect(error!.hint).toMatch(/^grant the relay's principal WRITE and DESCRIBE on "orders" /);
    expect(error!.hint).not.toContain('checkpoint');
    expect(printedAclCommands(error!.hint!)).toEqual([[...grant, '--topic', 'orders']]);
  });

  it('the commit refused with TOPIC_AUTHORIZATION_FAILED, no topic logged: the fix names the checkpoint topic and its setting beside the event topics', async () => {
    const sink = await openTransaction(60_000);
    commitError = nativeTxnError(29, 'Failed to add partition(s) to transaction on broker b:9092/1: Broker: Topic authorization failed (after 2 ms)', { isFatal: false, isRetriable: false, isTxnRequiresAbort: true });
    const error = await rejectionOf(sink.commit(checkpoint));
    commitError = undefined;
    expect(error?.code).toBe('KAFKA_AUTH');
    expect(error!.hint).toContain(`WRITE and DESCRIBE on the event topics and the checkpoint topic "outbox-relay.checkpoints" (${checkpointSetting}; `);
    // The event topics of the transaction are not known here: the command grants the checkpoint topic.
    expect(printedAclCommands(error!.hint!)).toEqual([[...grant, '--topic', 'outbox-relay.checkpoints']]);
  });
});

/** What claim() throws when init_transactions fails with librdkafka's fatal `code` (raw from the KafkaJS layer's connect). */
async function claimRefusal(transactionTimeoutMs: number, code: number, message: string): Promise<RelayError | undefined> {
  const sink = new RdKafkaTransactionalSink(settings, 's', transactionTimeoutMs, store, pino({ level: 'silent' }));
  await sink.connect();
  connectError = LibrdKafkaError.create({ message, code, isFatal: true, isRetriable: false, isTxnRequiresAbort: false });
  try {
    return await rejectionOf(sink.claim());
  } finally {
    connectError = undefined;
  }
}

describe('RdKafkaTransactionalSink: the transactional id refused (TRANSACTIONAL_ID_AUTHORIZATION_FAILED)', () => {
  it("KAFKA_AUTH, an outage a grant ends, whose fix grants WRITE and DESCRIBE on the slot's transactional id as a command that runs as printed", async () => {
    const error = await claimRefusal(60_000, 53, 'Broker: Transactional Id authorization failed');
    expect(error).toMatchObject({ code: 'KAFKA_AUTH', retriable: true, details: { kafkaError: 53 } });
    expect(error!.message).toBe('Kafka refused access: Broker: Transactional Id authorization failed');
    expect(error!.hint).toMatch(/^exactly-once: grant the relay's principal WRITE and DESCRIBE on the transactional id outbox-relay\.s /);
    // Before: "kafka-acls.sh --transactional-id;", with outbox-relay.<slot> for the id.
    expect(printedAclCommands(error!.hint!)).toEqual([['kafka-acls.sh', '--bootstrap-server', 'b:9092', '--add', '--allow-principal', '<principal>', '--operation', 'Write', '--operation', 'Describe', '--transactional-id', 'outbox-relay.s']]);
  });
});

describe('RdKafkaTransactionalSink: claims the brokers refuse for good', () => {
  it('INVALID_TRANSACTION_TIMEOUT (above the brokers\' transaction.max.timeout.ms) is a configuration error naming the setting, not a Kafka outage', async () => {
    // Fatal in librdkafka: rd_kafka_idemp_check_error.
    const error = await claimRefusal(900_000, 50, "Broker: Transaction timeout is larger than the maximum value allowed by the broker's max.transaction.timeout.ms");
    // Before: KAFKA_UNAVAILABLE, retriable: the start retried as a Kafka outage for retry.maxDuration, then
    // RETRIES_EXHAUSTED with the fix "check that the Kafka brokers are up and reachable".
    expect(error?.code).toBe('CONFIG_INVALID');
    expect(error?.retriable).toBe(false);
    expect(error?.hint).toContain('delivery.transactionTimeout');
    expect(error?.hint).toContain('transaction.max.timeout.ms');
  });

  it('_UNSUPPORTED_FEATURE (brokers without transactions) is a configuration error naming delivery.guarantee, not a Kafka outage', async () => {
    // librdkafka's text for it (rd_kafka_txn_set_fatal_error).
    const error = await claimRefusal(60_000, -165, 'Transactions not supported by any of the 1 connected broker(s): requires Apache Kafka broker version >= 0.11.0');
    // Before: KAFKA_UNAVAILABLE, retried for retry.maxDuration as a Kafka outage.
    expect(error?.code).toBe('CONFIG_INVALID');
    expect(error?.retriable).toBe(false);
    expect(error?.message).toContain('Transactions not supported by any of the 1 connected broker(s)');
    expect(error?.hint).toContain('set delivery.guarantee to at-least-once');
  });
});
