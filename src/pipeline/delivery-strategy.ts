import { Gauge, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { describeCheckpoint, type Checkpoint } from '../checkpoint/checkpoint.js';
import { CheckpointWriter } from '../checkpoint/checkpoint-writer.js';
import { KafkaCheckpointStore } from '../checkpoint/kafka-checkpoint-store.js';
import { RecordedReplayWindow } from '../checkpoint/recorded-window.js';
import { chooseStart, slotConfirmedLsn } from '../checkpoint/start-position.js';
import { guaranteeConfig } from '../config/guarantee-config.js';
import type { RelayConfig } from '../config/relay-config.js';
import { formatLsn, type Lsn } from '../lsn.js';
import { AtMostOnceDelivery } from '../sink/at-most-once-delivery.js';
import type { CreateDelivery } from '../sink/delivery.js';
import { DeliveryQueue } from '../sink/delivery-queue.js';
import { createKafkaClient } from '../sink/kafka-sink.js';
import type { Sink } from '../sink/sink.js';
import { TransactionalDelivery } from '../sink/transactional-delivery.js';
import { TransactionalSink } from '../sink/transactional-sink.js';
import type { RelayObserver } from './observer.js';

/** What a delivery guarantee contributes to a Relay (RelayDeps) and what the command must close afterwards. */
export interface DeliveryStrategy {
  sink: Sink;
  createDelivery: CreateDelivery;
  startPosition: () => Promise<Lsn | undefined>;
  reportPosition: (confirmed: Lsn) => Lsn;
  observer: RelayObserver;
  /** Flushes the last checkpoint (non-transactional modes). */
  close(): Promise<void>;
}

export interface StrategyOptions {
  /** The plain producer of the at-least-once and at-most-once modes (kafka.client picks it). */
  plainSink: Sink;
  /** For the replay-window gauge. */
  registry?: Registry;
}

/**
 * Assembles the pieces of `delivery.guarantee`: the sink and delivery, where streaming starts (checkpoint,
 * --from-lsn, replay window), the position reported to PostgreSQL, and how checkpoints are recorded.
 */
export function deliveryStrategy(config: RelayConfig, logger: Logger, options: StrategyOptions): DeliveryStrategy {
  const settings = guaranteeConfig(config);
  const kafka = createKafkaClient(config.kafka, logger.child({ module: 'checkpoint' }), '-checkpoint');
  const store = new KafkaCheckpointStore(kafka, settings.checkpointTopic);
  const window = new RecordedReplayWindow(settings.replayWindow, store, logger.child({ module: 'checkpoint' }));
  if (options.registry) {
    new Gauge({
      name: 'outbox_relay_replay_window_bytes',
      help: 'WAL kept by the replay window: delivered position minus the flush position reported to PostgreSQL.',
      registers: [options.registry],
      collect() {
        this.set(window.retainedBytes);
      },
    });
  }

  let transactional: TransactionalDelivery | undefined;
  let writer: CheckpointWriter | undefined;
  let sink: Sink;
  let createDelivery: CreateDelivery;
  if (settings.guarantee === 'exactly-once') {
    const txnSink = new TransactionalSink(config.kafka, config.slot, store, logger.child({ module: 'sink' }));
    sink = txnSink;
    createDelivery = (callbacks) => (transactional = new TransactionalDelivery(txnSink, config.slot, config.delivery, config.retry, callbacks));
  } else {
    const plain = options.plainSink;
    sink = plain;
    writer = new CheckpointWriter(kafka, store, config.slot, settings.guarantee, Math.max(1000, config.statusIntervalMs), logger.child({ module: 'checkpoint' }));
    createDelivery =
      settings.guarantee === 'at-most-once'
        ? (callbacks) => new AtMostOnceDelivery(plain, config.delivery, callbacks, logger.child({ module: 'sink' }))
        : (callbacks) => new DeliveryQueue(plain, config.delivery, config.retry, callbacks);
  }

  // Runs after the sink connected: in exactly-once mode that fenced older producers, so the checkpoint read is final.
  const startPosition = async (): Promise<Lsn | undefined> => {
    let checkpoint: Checkpoint | undefined;
    // Always read: the checkpoint also records the replay window, which outlives the run that set it.
    checkpoint = await store.read(config.slot);
    logger.info({ slot: config.slot, topic: store.topic, checkpoint: checkpoint ? describeCheckpoint(checkpoint) : null }, 'checkpoint read');
    const slotConfirmed = await slotConfirmedLsn(config.postgres, config.slot);
    if (checkpoint) {
      transactional?.startFrom(checkpoint.lsn);
      writer?.startFrom(checkpoint.lsn);
    }
    await window.resolve(checkpoint, slotConfirmed, kafka);
    const start = chooseStart({ slot: config.slot, requested: config.startLsn, checkpoint: checkpoint?.lsn, slotConfirmed });
    if (start !== undefined) logger.info({ startLsn: formatLsn(start), slotConfirmedLsn: formatLsn(slotConfirmed), requested: config.startLsn !== undefined }, 'start position chosen');
    writer?.start();
    return start;
  };

  const reportPosition = (confirmed: Lsn): Lsn => window.report(confirmed);

  return {
    sink,
    createDelivery,
    startPosition,
    reportPosition,
    observer: writer ?? {},
    close: async () => {
      await writer?.close();
    },
  };
}
