import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import { formatLsn, maxLsn, type Lsn } from '../lsn.js';
import { OutageLog } from '../outage-log.js';
import type { RelayObserver, RelayState } from '../pipeline/observer.js';
import type { CheckpointProducer } from './checkpoint-client.js';
import type { KafkaCheckpointStore } from './kafka-checkpoint-store.js';
import { backoffDelay, settlesWithin, sleep } from '../retry.js';

/**
 * The last write at a stop is tried up to this often, with this backoff, while the stop is younger than `withinMs`:
 * there is no next interval to try again, and a restart resumes from the previous checkpoint and re-sends what
 * came after it. `withinMs` bounds a write that hangs too: with every broker unreachable one send waits for the
 * client's message timeout (kafka.deliveryTimeout, 30 s by default), and a relay that had drained everything
 * exited SHUTDOWN_TIMEOUT (exit 1) at shutdownGrace + 5 s instead of 0.
 */
const FINAL_WRITE = { attempts: 4, initialDelayMs: 250, maxDelayMs: 2000, withinMs: 5000 };

/** How long the stop waits for the producer's close when no write is under way (close() does not wait for one then). */
const CLOSE_WITHIN_MS = 6000;

/**
 * Of the time a stop has left, what the last write leaves for what follows it: the session's last status and
 * release of the slot, the sink's close and the checkpoint producer's.
 */
const CLOSE_RESERVE_MS = 2000;

/**
 * Records the delivered (confirmed) position in the checkpoint topic for the at-least-once and at-most-once
 * modes, at most once per interval and only when it moved. It follows the acknowledgement rule rather than
 * taking part in it: a checkpoint written late only means a restart with a replay window re-sends a little more.
 * It never writes a position below the one it started from, so a replay of old transactions leaves it alone.
 */
export class CheckpointWriter implements RelayObserver {
  private readonly producer: CheckpointProducer;
  private latest: { lsn: Lsn; commitTimeMs: number | undefined } | undefined;
  private written: Lsn = 0n;
  private floor: Lsn = 0n;
  private ready = false;
  /** Periodic writes failing: the next interval tries again (the final write retries on its own schedule). */
  private readonly outage: OutageLog;
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** When the stop must be over (drainEnded); a close without a stop (the relay failed) has no such bound. */
  private closeBy = Infinity;
  /** The last write of a stop (drainEnded) or of a close without one: tried once. */
  private last: Promise<void> | undefined;
  /**
   * Another instance holds the slot and writes its own, newer positions: this one's older position would replace
   * them (a restart then sends again what the other delivered since). A takeover reads the checkpoint again and
   * raises the floor (startFrom) before anything is written.
   */
  private standby = false;

  constructor(
    private readonly store: KafkaCheckpointStore,
    private readonly slot: string,
    private readonly guarantee: string,
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {
    // Through the client kafka.client selects: the librdkafka producer by default, safe across leader changes.
    this.producer = store.client.producer();
    this.outage = new OutageLog(logger, {
      started: 'cannot write the checkpoint; retrying every interval',
      ongoing: 'still cannot write the checkpoint',
      ended: 'checkpoint written again',
    });
  }

  /**
   * `commitTimeMs`: the checkpoint's, carried into the positions confirmed after it until a transaction brings its
   * own. Without it, the first keepalive a restarted relay confirmed wrote a checkpoint without a commit time, and
   * the time a lost slot's republish needs (`slot drop` and `status` name it) was gone.
   */
  startFrom(lsn: Lsn, commitTimeMs?: number): void {
    this.floor = maxLsn(this.floor, lsn);
    if (this.latest === undefined || this.latest.lsn <= lsn) this.latest = { lsn, commitTimeMs: commitTimeMs ?? this.latest?.commitTimeMs };
  }

  /** Idempotent: the first position is decided again when the first connection failed. */
  start(): void {
    // Closed: a start position decided after the stop (the relay no longer waits for it) starts no writes.
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  /**
   * A stop begins: no periodic write starts after this; close() writes the newest position. With Kafka unreachable
   * each interval started another topic creation or send, and one still running in librdkafka's worker when the
   * process exits holds the exit until its own timeout (Node joins its thread pool at exit): up to 5 s more.
   */
  stateChanged(state: RelayState): void {
    this.standby = state === 'standby';
    // A standby writes nothing: an outage of its writes would otherwise never log its end (the relay's one line per
    // outage start and end), and a write failing after a later takeover would not start a new one.
    if (this.standby && this.outage.down) {
      this.logger.info({ downMs: this.outage.downMs(), attempts: this.outage.attempts }, 'checkpoint writes stopped: this instance is a standby now; the one streaming from the slot writes them');
      this.outage.endedAs();
    }
    if (state === 'draining') clearInterval(this.timer);
    // The session ended (its connection lost, the walsender terminated): a standby may take the slot within its
    // next look (every second) and resume at the checkpoint. Left to the next interval, it started from the one
    // before and, with a replay window, sent again what was delivered since. Not at 'standby', later: by then the
    // other instance may have written a newer position, which this one would replace.
    if (state === 'reconnecting') void this.flush();
  }

  confirmed(lsn: Lsn, commitTimeMs: number | undefined): void {
    if (this.latest && lsn <= this.latest.lsn) return;
    this.latest = { lsn, commitTimeMs: commitTimeMs ?? this.latest?.commitTimeMs };
  }

  /**
   * A stop's drain ended (`drained`: Kafka acknowledged everything handed over): the newest position is written
   * now, while the session still holds the slot. Written after the release, a standby that took over in between
   * (it looks every second) started from the previous checkpoint and, with a replay window, sent again what was
   * delivered since. Resolves by `closeBy` less what the rest of the stop needs.
   */
  drainEnded(drained: boolean, closeBy: number): Promise<void> {
    this.closeBy = closeBy;
    clearInterval(this.timer);
    this.last ??= this.writeLast(drained);
    return this.last;
  }

  /** Writes the newest position if it moved; one write at a time. */
  flush(): Promise<void> {
    this.flushing ??= this.write().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  /** A confirmed position not written yet, and this instance's to write (not a standby's). */
  private get pending(): boolean {
    return !this.standby && this.latest !== undefined && this.latest.lsn > this.written && this.latest.lsn > this.floor;
  }

  /**
   * Writes `lsn` now and throws when that fails: a position that must be in the checkpoint before anything streams
   * (a forward skip, delivery-strategy.ts). Left to the periodic writes, a crash before the first one lost it.
   */
  async record(lsn: Lsn): Promise<void> {
    this.confirmed(lsn, undefined);
    await this.send(lsn, undefined);
  }

  private async write(): Promise<void> {
    const latest = this.latest;
    if (!latest || !this.pending) return;
    // With every broker unreachable a send fails only after kafka.deliveryTimeout (30 s by default).
    const startedAt = Date.now();
    try {
      await this.send(latest.lsn, latest.commitTimeMs);
      this.outage.recovered();
    } catch (err) {
      // The next interval tries again; the slot still holds the confirmed position meanwhile. Once per outage, with
      // the code and the fix: a refusal no retry mends (a missing WRITE grant, a record above max.message.bytes)
      // goes on failing at every interval, and its warn line was the only word of it (its message only).
      const error = this.store.writeFailure(err);
      this.outage.failed({ code: error.code, err: error.message, fix: error.hint, ...error.details, topic: this.store.topic }, {}, startedAt);
    }
  }

  private async send(lsn: Lsn, commitTimeMs: number | undefined): Promise<void> {
    if (!this.ready) {
      await this.store.ensureTopic();
      this.ready = true;
    }
    await this.producer.send(this.store.topic, this.store.message({ slot: this.slot, lsn, commitTimeMs, writtenAtMs: Date.now(), guarantee: this.guarantee }));
    this.written = maxLsn(this.written, lsn);
  }

  /** Writes the newest position unless a stop's drainEnded did, then closes the producer. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    // Without a stop (the relay failed) everything handed over was acknowledged or dropped: what was confirmed is written.
    await (this.last ??= this.writeLast(true));
    // Nothing depends on the close any more: a failure is only noted, and one that comes after the bound has a handler.
    const closed = this.producer.close().catch((err: unknown) => this.logger.debug({ err: errorMessage(err) }, 'checkpoint producer close failed'));
    // A write the stop gave up on, still under way, holds kafkajs' disconnect, which waits for its request (a broker
    // that stopped answering holds it until kafka.requestTimeout). Waited for, it took the whole bound (6 s, or to
    // the stop's closeBy), and then the command waits up to 2 s for its clients to let go (exitSoonAfterClose):
    // every broker frozen and nothing in flight, the exit came 13 s after SIGTERM instead of 7 s, and with a
    // shutdownGrace under 8 s only at the watchdog ('closing the clients did not finish').
    if (this.flushing) return;
    await settlesWithin(closed, Math.max(0, Math.min(CLOSE_WITHIN_MS, this.closeBy - Date.now())));
  }

  private async writeLast(drained: boolean): Promise<void> {
    // A write still under way at the deadline is left to end on its own: write() catches its failure, and
    // finalWrite() starts no attempt after the deadline. After a drain the grace ended, Kafka did not acknowledge
    // in time: the write would wait on it too, with the watchdog (grace + 5 s) close, so none is tried. A drain that
    // took most of the grace leaves less than FINAL_WRITE.withinMs before the watchdog: the write gets what is left.
    const giveUpAt = Math.min(Date.now() + FINAL_WRITE.withinMs, this.closeBy - CLOSE_RESERVE_MS);
    // Undrained, a write already under way is still waited for (within the same bound): see stateChanged.
    const last = drained ? this.finalWrite(giveUpAt) : this.flushing;
    if (last) await settlesWithin(last, Math.max(0, giveUpAt - Date.now()));
    if (this.pending && this.latest) {
      this.logger.warn(
        { lsn: formatLsn(this.latest.lsn), writtenLsn: this.written === 0n ? null : formatLsn(this.written), topic: this.store.topic, drained },
        'the last checkpoint was not written: a restart resumes from the previous one (or the slot) and sends again what came after it',
      );
    }
  }

  /** Waits for a periodic write under way (flush() would return it), then writes the newest; no attempt starts after `giveUpAt`. */
  private async finalWrite(giveUpAt: number): Promise<void> {
    await this.flushing;
    for (let attempt = 1; ; attempt++) {
      await this.flush();
      if (!this.outage.down || attempt >= FINAL_WRITE.attempts) return;
      const delay = backoffDelay(FINAL_WRITE, attempt - 1);
      if (Date.now() + delay >= giveUpAt) return;
      await sleep(delay);
    }
  }
}
