import { Gauge, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { describeCheckpoint, type Checkpoint } from '../checkpoint/checkpoint.js';
import { CheckpointWriter } from '../checkpoint/checkpoint-writer.js';
import { createCheckpointClient } from '../checkpoint/create-checkpoint-client.js';
import { KafkaCheckpointStore } from '../checkpoint/kafka-checkpoint-store.js';
import { PolicyCheck } from '../checkpoint/policy-check.js';
import { RecordedReplayWindow } from '../checkpoint/recorded-window.js';
import { chooseStart, foreignCheckpoint, slotBounds } from '../checkpoint/start-position.js';
import { readTopicPolicy } from '../checkpoint/topic-policy.js';
import { guaranteeConfig } from '../config/guarantee-config.js';
import type { RelayConfig } from '../config/types.js';
import { RelayError, errorMessage } from '../errors.js';
import { formatLsn, type Lsn } from '../lsn.js';
import { RepeatedLines } from '../outage-log.js';
import type { CreateDelivery } from '../sink/delivery.js';
import { DeliveryEngine, type Producing } from '../sink/delivery-engine.js';
import { createTransactionalSink } from '../sink/create-sink.js';
import type { PlainSink, Sink } from '../sink/sink.js';
import { republishScope } from '../source/republish-command.js';
import { missingSlotDelivered } from '../source/slot-lost.js';
import type { SeenPublication } from '../source/seen-publication.js';
import { knownPublication } from '../source/publication-as-it-was.js';
import type { TimelinePosition } from '../source/timeline.js';
import { combineObservers, type RelayObserver } from './observer.js';

/** How long a missing slot's explanation waits for the checkpoint topic. */
const MISSING_SLOT_READ_MS = 5_000;

/** What a delivery guarantee contributes to a Relay (RelayDeps) and what the command must close afterwards. */
export interface DeliveryStrategy {
  sink: Sink;
  createDelivery: CreateDelivery;
  startPosition: () => Promise<TimelinePosition | undefined>;
  /** Where a later session starts (RelayDeps.resumePosition). */
  resumePosition: () => Promise<TimelinePosition | undefined>;
  /** The timeline sessions stream on (RelayDeps.streamingOn): written into every checkpoint record; the slot's position there raises the replay window's floor. */
  streamingOn: (timeline: number, slotConfirmed: Lsn) => void;
  /** RelayDeps.explainMissingSlot: a missing slot whose checkpoint exists was lost (slot-lost.ts). */
  explainMissingSlot: (missing: RelayError, seen: SeenPublication) => Promise<RelayError>;
  reportPosition: (confirmed: Lsn) => Lsn;
  observer: RelayObserver;
  /** A stop's drain ended (RelayDeps.drainEnded): the last checkpoint is written before the slot is released (non-transactional modes). */
  drainEnded: (drained: boolean, closeBy: number) => Promise<void>;
  /** Flushes the last checkpoint if no stop did (non-transactional modes) and closes. */
  close(): Promise<void>;
}

export interface StrategyOptions {
  /** The plain producer of the at-least-once and at-most-once modes (kafka.client picks it). */
  plainSink: PlainSink;
  /** For the replay-window gauge. */
  registry?: Registry;
  /** `replay`: --start-lsn re-delivers, so it may not lie beyond what was delivered (run's may skip forward). */
  replay?: boolean;
}

/**
 * Assembles the pieces of `delivery.guarantee`: the sink and delivery, where streaming starts (checkpoint,
 * --start-lsn, replay window), the position reported to PostgreSQL, and how checkpoints are recorded.
 */
export function deliveryStrategy(config: RelayConfig, logger: Logger, options: StrategyOptions): DeliveryStrategy {
  const settings = guaranteeConfig(config);
  const checkpointLogger = logger.child({ module: 'checkpoint' });
  const store = new KafkaCheckpointStore(createCheckpointClient(config.kafka, checkpointLogger), settings.checkpointTopic, config.kafka.brokers);
  const policyCheck = new PolicyCheck(store.topic, () => readTopicPolicy(config.kafka, checkpointLogger, store.topic), checkpointLogger);
  const window = new RecordedReplayWindow(settings.replayWindow, store, checkpointLogger, settings.guarantee);
  /**
   * Demoted to a standby (a reconnect found the slot taken by another instance) until a session streams again: the
   * slot's WAL is the active instance's to report, as its lag is (RelayMetrics). Kept, the dashboard's window panel
   * showed this instance's former window, frozen at the demotion, next to the one the slot really keeps. The
   * session that takes the slot back decides the window again (takeover).
   */
  let demoted = false;
  const demotion: RelayObserver = {
    stateChanged: (state) => {
      if (state === 'standby') demoted = true;
      else if (state === 'streaming') demoted = false;
    },
  };
  if (options.registry) {
    new Gauge({
      name: 'outbox_relay_replay_window_bytes',
      help: 'WAL kept by the replay window: delivered position minus the flush position reported to PostgreSQL. 0 on a standby (also one that held the slot before).',
      registers: [options.registry],
      collect() {
        this.set(demoted ? 0 : window.retainedBytes);
      },
    });
  }

  let engine: DeliveryEngine | undefined;
  let writer: CheckpointWriter | undefined;
  let producing: Producing;
  if (settings.guarantee === 'exactly-once') {
    producing = { guarantee: 'exactly-once', sink: createTransactionalSink(config, store, logger.child({ module: 'sink' })), slot: config.slot };
  } else {
    producing = { guarantee: settings.guarantee, sink: options.plainSink };
    writer = new CheckpointWriter(store, config.slot, settings.guarantee, Math.max(1000, config.statusIntervalMs), checkpointLogger);
  }
  const createDelivery: CreateDelivery = (callbacks) =>
    (engine = new DeliveryEngine({ producing, limits: config.delivery, retry: config.retry, stallTimeoutMs: config.kafka.deliveryTimeoutMs, callbacks, brokers: config.kafka.brokers }));

  // The first position is decided again at every attempt of a start that failed, and each later session reads the
  // checkpoint again: the same decision once at info.
  const decisions = new RepeatedLines(logger);
  /** Named by the republish a refusal's fix prints. */
  const republish = republishScope(config);
  const readCheckpoint = async (): Promise<Checkpoint | undefined> => {
    const checkpoint = await store.read(config.slot);
    decisions.info({ slot: config.slot, topic: store.topic, checkpoint: checkpoint ? describeCheckpoint(checkpoint) : null }, 'checkpoint read');
    return checkpoint;
  };

  /** The checkpoint the first session's position was decided with (see resumePosition). */
  let startCheckpoint: Lsn | undefined;
  /** Another server's checkpoint found at the start and passed over (see ownCheckpoint). */
  let passedOver: Checkpoint | undefined;

  /**
   * `checkpoint`, or undefined for another server's record this relay may pass over; another server's record that
   * would become the start is refused (foreignCheckpoint). One behind the slot's position was left by a server this
   * one replaced (pg_upgrade or a move to a new cluster give a new system identifier): it would not be the start,
   * and this relay's next checkpoint replaces it. Checked before anything rewrites the record (the replay window's).
   */
  const ownCheckpoint = (checkpoint: Checkpoint, systemId: string, slotConfirmed: Lsn): Checkpoint | undefined => {
    const foreign = foreignCheckpoint(config.slot, republish, store.topic, checkpoint, systemId);
    if (!foreign) return checkpoint;
    if (checkpoint.lsn > slotConfirmed && !(passedOver?.lsn === checkpoint.lsn && passedOver.systemId === checkpoint.systemId)) throw foreign;
    if (passedOver === undefined) logger.warn({ ...foreign.details, slotConfirmedLsn: formatLsn(slotConfirmed) }, "another PostgreSQL server's checkpoint of this slot, behind the slot's position, is passed over: this relay's next checkpoint replaces it");
    passedOver = checkpoint;
    return undefined;
  };

  /**
   * A forward skip (run --start-lsn past the checkpoint) counts as delivered from the start on, so the checkpoint
   * records it before anything streams. Left to the first transaction confirmed after it, a halt or crash before
   * that (the next event poison too, Kafka down) started the next run at the old checkpoint, which a replay window
   * keeps ahead of the slot: the skipped range, its poison event included, streamed again. The writer writes it
   * at once: left to its first periodic write, a crash (SIGKILL) right after the start lost it the same way.
   * exactly-once records positions only in Kafka transactions: one holding only the checkpoint record (with the
   * replay window, as every record), committed by this run's producer, which the claim just registered (older ones
   * are fenced: none commits an older position after it). A failure is retried by the relay as a start whose
   * checkpoint could not be read: under exactly-once the next claim's new producer aborts what this one left open,
   * and the checkpoint read again tells whether an ambiguous commit happened after all.
   */
  const recordSkip = async (start: Lsn): Promise<void> => {
    try {
      if (producing.guarantee === 'exactly-once') await producing.sink.commit({ slot: config.slot, lsn: start, commitTimeMs: undefined, writtenAtMs: Date.now(), guarantee: settings.guarantee });
      else await writer?.record(start);
    } catch (err) {
      // The fix is the failure's own, for the checkpoint topic (store.writeFailure): a grant the brokers refused
      // (WRITE on the topic, a producer id, exactly-once's transactional id) was named nowhere, the line said to
      // check the brokers.
      throw new RelayError('CHECKPOINT_FAILED', `cannot record the forward skip to ${formatLsn(start)} in the checkpoint topic "${store.topic}": ${errorMessage(err)}`, {
        cause: err,
        retriable: true,
        hint: `${store.writeFailure(err).hint}; nothing past the checkpoint was streamed or confirmed`,
        details: { startLsn: formatLsn(start), checkpointLsn: startCheckpoint === undefined ? null : formatLsn(startCheckpoint) },
      });
    }
    engine?.startFrom(start);
  };

  // Runs after the sink claimed the slot: in exactly-once mode that fenced older producers, so the checkpoint read is final.
  const startPosition = async (): Promise<TimelinePosition | undefined> => {
    // Always read: the checkpoint also records the replay window, which outlives the run that set it. The slot's
    // bounds come from PostgreSQL meanwhile.
    const [read, slot] = await Promise.all([readCheckpoint(), slotBounds(config.postgres, config.slot, republish)]);
    const { confirmed: slotConfirmed, walEnd } = slot;
    const checkpoint = read && slot.systemId !== undefined ? ownCheckpoint(read, slot.systemId, slotConfirmed) : read;
    store.systemId = slot.systemId;
    startCheckpoint = checkpoint?.lsn;
    if (checkpoint) {
      engine?.startFrom(checkpoint.lsn, checkpoint.commitTimeMs);
      writer?.startFrom(checkpoint.lsn, checkpoint.commitTimeMs);
    }
    await window.resolve(checkpoint, slot);
    const start = chooseStart({ slot: config.slot, republish, requested: config.startLsn, checkpoint: checkpoint?.lsn, checkpointCommitTimeMs: checkpoint?.commitTimeMs, slotConfirmed, walEnd, forwardSkip: options.replay !== true });
    if (start !== undefined) decisions.info({ startLsn: formatLsn(start), slotConfirmedLsn: formatLsn(slotConfirmed), requested: config.startLsn !== undefined }, 'start position chosen');
    if (start !== undefined && config.startLsn !== undefined && options.replay !== true && start > (checkpoint?.lsn ?? 0n)) await recordSkip(start);
    writer?.start();
    policyCheck.schedule();
    // A checkpoint's position carries the timeline it was confirmed on and its commit time (a refusal's fix names
    // the republish from it); a --start-lsn neither. One behind the slot goes to the session too, which starts at
    // the slot then, but checks that the slot is not one made after a failover, past what was delivered.
    if (config.startLsn !== undefined) return start === undefined ? undefined : { lsn: start, timeline: undefined };
    return checkpoint ? { lsn: start ?? checkpoint.lsn, timeline: checkpoint.timeline, commitTimeMs: checkpoint.commitTimeMs } : undefined;
  };

  const reportPosition = (confirmed: Lsn): Lsn => window.report(confirmed);

  // The relay exits with it either way: a checkpoint topic that cannot be read leaves the plain message, soon.
  const explainMissingSlot = async (missing: RelayError, seen: SeenPublication): Promise<RelayError> => {
    const checkpoint = await store.read(config.slot, MISSING_SLOT_READ_MS).catch(() => undefined);
    return checkpoint ? missingSlotDelivered(missing, store.topic, checkpoint, { slot: config.slot, ...republish }, knownPublication(config.publication, config.tables, seen)) : missing;
  };

  /** The checkpoint read again, this server's or one passed over at the start (a new one of another server is refused). */
  const readOwnCheckpoint = async () => {
    const read = await readCheckpoint();
    return read && store.systemId !== undefined ? ownCheckpoint(read, store.systemId, 0n) : read;
  };

  /**
   * A session after a time as a standby (another instance held the slot and wrote checkpoints with its own window
   * and the positions that window held) decides the window again, with the checkpoint and the slot's bounds, as the
   * first start does (resolve): the window recorded there applies unless this relay sets one, and the recorded
   * positions are reported at the times they were delivered. Kept from before the takeover, the window went on as
   * this relay's own: every position the other delivered was stamped with the takeover's time (the slot held up to
   * a window longer, outbox_relay_replay_window_bytes counting it), and this relay's window went into its
   * checkpoints over the one the other recorded: a window the other set was lost (the slot moved past it), one it
   * released (0) came back. So here, as at the first start, a checkpoint that cannot be read fails the session
   * (retried). A relay that never saw the other (it took the slot and let it go between two attempts of this one)
   * cannot tell: its window goes on, from the slot's position (streamingOn).
   */
  const takeover = async (): Promise<Checkpoint | undefined> => {
    const [checkpoint, slot] = await Promise.all([readOwnCheckpoint(), slotBounds(config.postgres, config.slot, republish)]);
    await window.resolve(checkpoint, slot);
    return checkpoint;
  };

  /**
   * Where a session after the first starts: the checkpoint read again, when it is newer than the one read at the
   * start. exactly-once: a commit whose answer was lost may have happened, and only the checkpoint says. The other
   * modes: another instance may have held the slot since (this one waited as a standby, or reconnected after the
   * other took the slot and let it go) and delivered; resumed at this process's own last position instead (the
   * slot, which a replay window keeps behind, is older still), the takeover sent again all the other delivered,
   * and the writer, whose floor is raised here, could write that older position over the other's. Outside a
   * takeover (above) only duplicates hang on that, so there a read that fails resumes as before: a PostgreSQL
   * reconnect does not wait for Kafka. A checkpoint no newer than the start's says nothing: a replay (--start-lsn)
   * below it leaves it unchanged (checkpoints never move back), and resuming there would pass over the rest of the
   * replayed range without re-sending it. The session takes the newest of this and its own confirmed position.
   */
  const resumePosition = async (): Promise<TimelinePosition | undefined> => {
    const read = demoted
      ? takeover()
      : settings.guarantee === 'exactly-once'
        ? readOwnCheckpoint()
        : readOwnCheckpoint().catch((err: unknown) => void logger.debug({ err: errorMessage(err) }, "checkpoint not read for the resume: resuming at the relay's own position"));
    const checkpoint = await read;
    if (checkpoint === undefined) return undefined;
    engine?.startFrom(checkpoint.lsn, checkpoint.commitTimeMs);
    writer?.startFrom(checkpoint.lsn, checkpoint.commitTimeMs);
    return startCheckpoint === undefined || checkpoint.lsn > startCheckpoint ? { lsn: checkpoint.lsn, timeline: checkpoint.timeline, commitTimeMs: checkpoint.commitTimeMs } : undefined;
  };

  return {
    sink: producing.sink,
    createDelivery,
    startPosition,
    resumePosition,
    reportPosition,
    streamingOn: (timeline, slotConfirmed) => {
      store.timeline = timeline;
      // A takeover: the instance that held the slot since this one last streamed moved it. Left at this relay's own
      // older floor, the window reported a flush position below the slot's (a PostgreSQL without the guard that keeps
      // confirmed_flush from moving back takes it), and the gauges counted WAL the slot no longer keeps.
      window.raiseFloor(slotConfirmed);
    },
    explainMissingSlot,
    observer: combineObservers(writer ?? {}, demotion),
    drainEnded: async (drained, closeBy) => writer?.drainEnded(drained, closeBy),
    close: async () => {
      policyCheck.close();
      await writer?.close();
    },
  };
}
