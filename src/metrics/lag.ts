import type { Lsn } from '../lsn.js';

/**
 * End-to-end and slot lag from what the replication stream tells us. The commit time of the last confirmed
 * transaction alone would make an idle outbox look ever more behind, so a moment at which the relay had
 * confirmed everything the server had sent also counts as "caught up": lag is the time since the newer of
 * the two. While Kafka or PostgreSQL is unreachable neither moves, and the lag grows as it should.
 */
export class LagTracker {
  private confirmedLsn: Lsn = 0n;
  private serverLsn: Lsn = 0n;
  private lastCommitMs: number | undefined;
  private caughtUpAtMs: number | undefined;
  /** Since when this instance has had the slot to deliver (see counting()): the lag before any confirmation. */
  private countingSinceMs: number | undefined;

  /**
   * The relay has the slot to deliver from `nowMs` on (it starts, or took over): until something is confirmed or
   * it caught up, the lag is the time since then. Left at 0, a relay that delivers nothing from its start (Kafka
   * refuses every produce) reported no lag for as long as it tried.
   */
  counting(nowMs: number): void {
    this.countingSinceMs ??= nowMs;
  }

  confirmed(lsn: Lsn, commitTimeMs: number | undefined, nowMs: number): void {
    if (lsn > this.confirmedLsn) this.confirmedLsn = lsn;
    if (commitTimeMs !== undefined && (this.lastCommitMs === undefined || commitTimeMs > this.lastCommitMs)) this.lastCommitMs = commitTimeMs;
    // Only at the server's position: past it, the server has sent more since its last keepalive (a reconnect's
    // backlog, a busy stream), and how much more is unknown until the next one (or the slot-lag probe) says.
    if (this.confirmedLsn === this.serverLsn) this.checkCaughtUp(nowMs);
  }

  /** A keepalive: the server has sent everything up to `walEnd`. */
  serverPosition(walEnd: Lsn, nowMs: number): void {
    if (walEnd > this.serverLsn) this.serverLsn = walEnd;
    this.checkCaughtUp(nowMs);
  }

  /**
   * `lsn` is confirmed, though nothing was confirmed now (a session's start position, reported): the next keepalive
   * at or behind it finds the relay caught up. No moment of catching up itself: the server's position known may be
   * a lost session's, from before a backlog.
   */
  holds(lsn: Lsn): void {
    if (lsn > this.confirmedLsn) this.confirmedLsn = lsn;
  }

  /** 0 for a standby (nothing to count); before anything was confirmed or caught up, the time since counting(). */
  lagSeconds(nowMs: number): number {
    // Once something was confirmed, its commit time rules even when older than the start (a backlog's age).
    const measured = Math.max(this.lastCommitMs ?? -Infinity, this.caughtUpAtMs ?? -Infinity);
    const since = Number.isFinite(measured) ? measured : (this.countingSinceMs ?? -Infinity);
    return Number.isFinite(since) ? Math.max(0, nowMs - since) / 1000 : 0;
  }

  /** WAL the slot retains: the server's position minus `reported` (the flush position sent; default the confirmed one). */
  slotLagBytes(reported: Lsn = this.confirmedLsn): number {
    return this.serverLsn > reported ? Number(this.serverLsn - reported) : 0;
  }

  private checkCaughtUp(nowMs: number): void {
    if (this.serverLsn !== 0n && this.confirmedLsn >= this.serverLsn) this.caughtUpAtMs = nowMs;
  }
}
