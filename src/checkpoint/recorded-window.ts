import type { Logger } from 'pino';
import type { Guarantee } from '../config/guarantee-config.js';
import { ConfigError } from '../config/load.js';
import { errorMessage } from '../errors.js';
import { formatLsn, type Lsn } from '../lsn.js';
import { RepeatedLines } from '../outage-log.js';
import type { Checkpoint } from './checkpoint.js';
import type { SlotBounds } from './start-position.js';
import type { KafkaCheckpointStore } from './kafka-checkpoint-store.js';
import { settingRef } from '../config/settings.js';
import { ReplayWindowPosition, atMostOnceWindowRefused, formatReplayWindow, parseReplayWindow, type ReplayWindowSetting } from './replay-window.js';

/**
 * The replay window as state of the slot rather than a per-run flag. Every checkpoint record carries the window in
 * force, and a run or replay that does not set `replayWindow` keeps the recorded one: a replay started without
 * `--replay-window` must not move the slot to the delivered position and lose the window for good. Setting it
 * explicitly (also to 0) replaces the recorded window, with a warning naming the WAL that becomes releasable.
 */
export class RecordedReplayWindow {
  private position: ReplayWindowPosition | undefined;
  /** resolve() runs again at every attempt of a start that failed: the window kept or changed is said once. */
  private readonly decisions: RepeatedLines;

  constructor(
    /** The setting; undefined when not given, so the recorded window applies. */
    private readonly setting: ReplayWindowSetting | undefined,
    private readonly store: KafkaCheckpointStore,
    logger: Logger,
    private readonly guarantee: Guarantee,
  ) {
    this.decisions = new RepeatedLines(logger);
  }

  /**
   * Decides the window from the setting and the checkpoint just read, before the first position is reported.
   * `slot.confirmed` is the slot's position: what the window holds today is the WAL between it and the checkpoint.
   * A new window is recorded only while no other instance streams from the slot (`slot.active`): a standby's
   * rewrite of the checkpoint it read would land after the active instance's newer ones and move the checkpoint
   * back (a restart would then send those events again, under exactly-once too). The standby decides again when
   * it takes over, also one that held the slot before (delivery-strategy.ts, takeover).
   */
  async resolve(checkpoint: Checkpoint | undefined, slot: Pick<SlotBounds, 'confirmed' | 'active'>): Promise<void> {
    const slotConfirmed = slot.confirmed;
    const recordedText = checkpoint?.replayWindow;
    const recorded = recordedText === undefined ? undefined : parseReplayWindow(recordedText);
    if (recordedText !== undefined && recorded === undefined && this.setting === undefined) {
      // Taken as none, it would be replaced by 0 at the next checkpoint and the slot would move up to the
      // delivered position: the WAL the window held released, with no line saying so.
      throw new ConfigError(
        `the checkpoint of slot "${checkpoint!.slot}" records replay window "${recordedText}", which this relay cannot read (written by another version, or edited)`,
        'set replayWindow (--replay-window) explicitly: the window to keep from now on, or 0 to release it',
      );
    }
    const effective: ReplayWindowSetting = this.setting ?? recorded ?? { kind: 'none' };
    const text = formatReplayWindow(effective);
    // The config loader refuses one set explicitly already (so that config check does); the recorded one only shows here.
    if (effective.kind !== 'none' && this.guarantee === 'at-most-once') {
      throw atMostOnceWindowRefused(effective, this.setting ? 'set by replayWindow' : 'recorded in the checkpoint', `run with ${settingRef('replayWindow')} 0 (it also releases a window recorded in the checkpoint), or with delivery.guarantee at-least-once`);
    }
    this.store.replayWindow = text;
    // resolve() runs again at every attempt of a start: each decides the window anew.
    this.position = undefined;
    this.store.replaySamples = undefined;
    if (effective.kind !== 'none') {
      const position = new ReplayWindowPosition(effective);
      position.raiseFloor(slotConfirmed);
      // The positions the last run's window still held keep their delivery times: seeded with the slot alone, the
      // window began again at every restart, and a relay restarted more often than the window never moved the slot.
      if (checkpoint?.replaySamples) position.seed(checkpoint.replaySamples, checkpoint.lsn);
      this.store.replaySamples = (upTo) => position.pending(upTo);
      this.position = position;
    }
    if (this.setting === undefined) {
      if (recorded && recorded.kind !== 'none') this.decisions.info({ replayWindow: text }, 'replay window recorded in the checkpoint kept (set replayWindow explicitly to change it; 0 releases it)');
      return;
    }
    const previous = recorded === undefined ? recordedText : formatReplayWindow(recorded);
    if (!checkpoint || previous === text || slot.active) return;
    if (previous !== undefined && previous !== '0') {
      const held = checkpoint.lsn > slotConfirmed ? checkpoint.lsn - slotConfirmed : 0n;
      this.decisions.warn(
        { previousReplayWindow: previous, replayWindow: text, slotConfirmedLsn: formatLsn(slotConfirmed), checkpointLsn: formatLsn(checkpoint.lsn), walHeldBytes: Number(held) },
        `replay window changed from ${previous} to ${text}: the slot moves forward and PostgreSQL may release WAL the window held (${held} bytes between ${formatLsn(slotConfirmed)} and ${formatLsn(checkpoint.lsn)}); events below the new slot position can then only be re-sent with republish`,
      );
    }
    // Recorded at once: a run that delivers nothing must still leave the new window for the next one.
    await this.rewrite(checkpoint);
  }

  /** The flush position to report for a confirmed one: the window's older position, or the confirmed one. */
  report(confirmed: Lsn, nowMs = Date.now()): Lsn {
    if (!this.position) return confirmed;
    this.position.confirmed(confirmed, nowMs);
    return this.position.position(nowMs);
  }

  /** A session starts from a slot confirmed at `lsn` (ReplayWindowPosition.raiseFloor). */
  raiseFloor(lsn: Lsn): void {
    this.position?.raiseFloor(lsn);
  }

  /** WAL the window keeps beyond the delivered position (0 without a window). */
  get retainedBytes(): number {
    return this.position?.retainedBytes ?? 0;
  }

  private async rewrite(checkpoint: Checkpoint): Promise<void> {
    const producer = this.store.client.producer();
    try {
      await producer.send(this.store.topic, this.store.message({ ...checkpoint, writtenAtMs: Date.now() }));
    } catch (err) {
      // The next checkpoint the relay writes records the window too; until then a restart would keep the old one.
      this.decisions.warn({ err: errorMessage(err), topic: this.store.topic }, 'cannot record the new replay window in the checkpoint yet');
    } finally {
      await producer.close();
    }
  }
}
