import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ErrorCode } from '../errors.js';
import type { Lsn } from '../lsn.js';
import { RELAY_STATES, type RelayObserver, type RelayState } from '../pipeline/observer.js';
import type { InFlightState, Receipt } from '../sink/delivery.js';
import { LagTracker } from './lag.js';
import { WeightedHistogram } from './weighted-histogram.js';

const PREFIX = 'outbox_relay_';

/**
 * Produce round trips of an acks=all batch: a few ms on a healthy cluster, seconds while a leader moves. Up to half
 * an hour: during a Kafka outage a batch waits as long as the outage (the client retries it, in order), events wait
 * behind it, and after a restart or with a backlog a transaction is as old as the backlog; a top bucket of 30 s
 * would make histogram_quantile report 30 s for all of that.
 */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

/** Holding the slot: the instance that streams (or drains before handing the slot over). */
const ACTIVE_STATES: ReadonlySet<RelayState> = new Set(['streaming', 'draining']);

/** Sending nothing more: what a halt left in the delivery's window is refused, not on its way (as in /readyz). */
const ENDED_STATES: ReadonlySet<RelayState> = new Set(['halted', 'failed', 'stopped']);

export interface InFlightView {
  readonly inFlight: InFlightState;
}

interface TopicCounters {
  events: Counter.Internal;
  bytes: Counter.Internal;
}

/**
 * The relay's Prometheus metrics, in a registry of its own (plus the default process metrics), fed by the
 * pipeline through RelayObserver. Delivered events are counted per batch and per run of the same topic, with
 * the label children cached, so the per-event cost is a comparison and two additions.
 */
export class RelayMetrics implements RelayObserver {
  readonly registry = new Registry();
  private lag = new LagTracker();
  private readonly byTopic = new Map<string, TopicCounters>();
  private readonly eventsTotal = this.counter('events_total', 'Events relayed to Kafka (acknowledged), by topic.', ['topic']);
  private readonly bytesTotal = this.counter('bytes_total', 'Bytes of records relayed to Kafka (acknowledged), by topic.', ['topic']);
  private readonly produceLatency = new Histogram({
    name: `${PREFIX}produce_latency_seconds`,
    help: 'Time from handing a batch to Kafka until all its records were acknowledged (acks=all).',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly eventLatency = new WeightedHistogram(
    `${PREFIX}event_latency_seconds`,
    "Time from the relay reading an event's transaction until the event counted as delivered (acknowledged by Kafka; exactly-once: its Kafka transaction committed), one observation per event: the relay's queue and the produce round trip. By the relay's clock.",
    LATENCY_BUCKETS,
    this.registry,
  );
  private readonly sourceDelay = new Histogram({
    name: `${PREFIX}source_delay_seconds`,
    help: "Time from a transaction's commit until PostgreSQL sent it to the relay, both by PostgreSQL's clock: decoding, and the walsender waiting for a core or for the relay to read. Observed when the relay has read the transaction's commit, once per transaction in a process: not again when it streams again (a reconnect, an exactly-once restart from the checkpoint).",
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly retries = this.counter('retries_total', 'Retries of Kafka produce or connect attempts, by error code.', ['code']);
  private readonly errors = this.counter('errors_total', 'Errors by code: lost replication connections, poison records, halts.', ['code']);
  private readonly filteredTotal = this.counter(
    'filtered_total',
    "Rows the table's include/exclude filters left out (confirmed without a record), by table. Counted when the relay has read their transaction's commit, once per transaction in a process: not again when it streams again (a reconnect, an exactly-once restart from the checkpoint).",
    ['table'],
  );
  private readonly droppedTotal = this.counter('events_dropped_total', 'at-most-once: events lost because Kafka refused their batch after it was handed off, or because PostgreSQL took the position of a batch not yet sent when the session ended (found by the relay\'s next session; not counted when another instance took the slot or the relay ended first).', []);
  private readonly notRelayedTotal = this.counter('messages_not_relayed_total', 'Logical messages with a relayed prefix emitted outside a transaction: they carry no event. By prefix.', ['prefix']);
  private readonly deadLetteredTotal = this.counter('dead_lettered_total', 'Events written to the dead-letter topic, by the error code that made them poison.', ['code']);
  private readonly reconnects = this.counter('reconnects_total', 'Replication sessions started after a lost connection or a standby takeover.', []);
  private readonly state = this.gauge('state', 'Current relay state: 1 for the current state, 0 for the others.', ['state']);
  private readonly active = this.gauge('active', '1 while this instance holds the replication slot (streaming or draining), 0 as a standby or otherwise.');
  private readonly slotLost = this.gauge('slot_lost', '1 after the replication slot was found invalidated (PG_SLOT_LOST) until a session streams again.');
  private readonly producer = this.gauge('producer_connected', '1 while the Kafka producer is connected and its last produce succeeded.');
  private readonly inFlightEvents = this.gauge('in_flight_events', 'Events handed to Kafka and not yet acknowledged.');
  private readonly inFlightBytes = this.gauge('in_flight_bytes', 'Bytes of records handed to Kafka and not yet acknowledged.');
  private readonly windowFull = this.counter('window_full_seconds_total', 'Time the in-flight window was full: the relay read nothing from PostgreSQL meanwhile, Kafka set the pace.', []);
  private windowFullCounted = 0;
  private ended = false;
  private readonly confirmedLsn = this.gauge('confirmed_lsn', 'Flush position last reported to PostgreSQL, as a number (exact below 2^53); behind delivered_lsn by a replay window.');
  private readonly deliveredLsn = this.gauge('delivered_lsn', 'End LSN of the newest transaction delivered with every earlier one, as a number (exact below 2^53).');
  private reportedLsn: Lsn | undefined;
  /** What delivered_lsn shows: the newest confirmed() or a session's start (reported). */
  private deliveredTo: Lsn = 0n;
  private readonly slotLag = this.gauge('slot_lag_bytes', 'WAL the slot keeps for this relay: the server\'s WAL position (from keepalives; while the stream gives none, read from PostgreSQL) minus the flush position reported.');
  private readonly build = this.gauge('build_info', 'Always 1; the labels name the relay version, the Kafka client and the delivery guarantee.', ['version', 'client', 'guarantee']);
  private readonly endToEndLag = this.gauge(
    'end_to_end_lag_seconds',
    'Now minus the newer of: the commit time of the last confirmed transaction, the last moment everything the server had sent was confirmed (before any: the start or takeover).',
  );

  /** When the replication stream last gave the server's WAL position (a keepalive). */
  private walPositionAtMs = Date.now();

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    this.stateChanged('starting');
  }

  stateChanged(current: RelayState): void {
    for (const state of RELAY_STATES) this.state.set({ state }, state === current ? 1 : 0);
    this.ended = ENDED_STATES.has(current);
    this.active.set(ACTIVE_STATES.has(current) ? 1 : 0);
    // A streaming session proves the slot usable again (dropped and re-created).
    if (current === 'streaming') this.slotLost.set(0);
    // Demoted (a reconnect found the slot taken by another instance, a frozen instance thawed): the slot's lag is
    // the active instance's to report. Kept, this one's would grow from its last confirmation for as long as it
    // waits, and the rules' max by (job) would report the pair as late while the other instance keeps up.
    if (current === 'standby') {
      this.lag = new LagTracker();
      this.slotLag.set(0);
    } else if (current === 'starting' || current === 'streaming') this.lag.counting(Date.now());
  }

  delivered(receipts: readonly Receipt[], latencyMs: number | undefined): void {
    // Undefined when no produce round trip was timed (an at-most-once hand-off, a row the poison policy dealt with):
    // a 0 there would pull the per-batch quantiles down and count batches Kafka never answered.
    if (latencyMs !== undefined) this.produceLatency.observe(latencyMs / 1000);
    const now = Date.now();
    // A row the poison policy dealt with reached no topic of its own.
    for (const r of receipts) {
      if (r.skipped) continue;
      this.count(r.topic, r.count, r.bytes);
      this.eventLatency.observe((now - r.txn.readAtMs) / 1000, r.count);
    }
  }

  confirmed(lsn: Lsn, commitTimeMs: number | undefined): void {
    this.deliveredTo = lsn;
    this.deliveredLsn.set(Number(lsn));
    if (this.reportedLsn === undefined) this.confirmedLsn.set(Number(lsn));
    this.lag.confirmed(lsn, commitTimeMs, Date.now());
    this.slotLag.set(this.lag.slotLagBytes(this.reportedLsn));
  }

  /**
   * The flush position sent to PostgreSQL (a replay window keeps it behind the delivered one); returns it.
   * `confirmed`: the delivered position it was derived from. A session's start position is confirmed without a
   * confirmed() call (nothing moved), so on a server that wrote nothing since, its keepalives would never find the
   * relay caught up: the lag would grow from the start until the next write.
   */
  reported(lsn: Lsn, confirmed: Lsn = lsn): Lsn {
    // The same start for delivered_lsn: it stayed at 0 (or at this instance's older position, after a standby took
    // over) while confirmed_lsn and /readyz showed the start, until the next transaction.
    if (confirmed > this.deliveredTo) {
      this.deliveredTo = confirmed;
      this.deliveredLsn.set(Number(confirmed));
    }
    this.reportedLsn = lsn;
    this.lag.holds(confirmed);
    this.confirmedLsn.set(Number(lsn));
    this.slotLag.set(this.lag.slotLagBytes(lsn));
    return lsn;
  }

  transactionSent(commitTimeMs: number, sentAtMs: number): void {
    // One clock, so only a step of the server's clock between commit and send makes it negative.
    this.sourceDelay.observe(Math.max(0, sentAtMs - commitTimeMs) / 1000);
  }

  walPosition(serverWalEnd: Lsn): void {
    this.walPositionAtMs = Date.now();
    this.lag.serverPosition(serverWalEnd, this.walPositionAtMs);
    this.slotLag.set(this.lag.slotLagBytes(this.reportedLsn));
  }

  /** How long the replication stream has given no WAL position (since the start when it never did). */
  walPositionAgeMs(nowMs = Date.now()): number {
    return nowMs - this.walPositionAtMs;
  }

  /**
   * The slot's lag as PostgreSQL counts it and the WAL position it was measured against, read while the stream
   * gives no WAL position (source/slot-lag-probe.ts). The position is the server's from now on: a status the
   * relay reports meanwhile (a full window still reports) computes the lag against it, not against the last
   * keepalive's, which would pull the gauge back between two probes.
   */
  slotLagProbed(walEnd: Lsn, lagBytes: number): void {
    this.lag.serverPosition(walEnd, Date.now());
    this.slotLag.set(lagBytes);
  }

  inFlight(events: number, bytes: number): void {
    this.inFlightEvents.set(events);
    this.inFlightBytes.set(bytes);
  }

  retrying(code: ErrorCode): void {
    this.retries.inc({ code });
  }

  error(code: ErrorCode): void {
    this.errors.inc({ code });
    // The relay halts on it and stays up: a gauge, unlike the counter's increase, keeps the alert firing.
    if (code === 'PG_SLOT_LOST') this.slotLost.set(1);
  }

  filtered(table: string, rows: number): void {
    this.filteredTotal.inc({ table }, rows);
  }

  dropped(events: number): void {
    this.droppedTotal.inc(events);
  }

  messageNotRelayed(prefix: string): void {
    this.notRelayedTotal.inc({ prefix });
  }

  deadLettered(code: ErrorCode): void {
    this.deadLetteredTotal.inc({ code });
  }

  reconnected(): void {
    this.reconnects.inc();
  }

  producerConnected(connected: boolean): void {
    this.producer.set(connected ? 1 : 0);
  }

  /**
   * The exposition text. Lag depends on the time of the scrape, and the pipeline reports in-flight counts only
   * when Kafka acknowledges, not when events enter the window: both are read now.
   */
  async render(view: InFlightView): Promise<string> {
    // A halted delivery keeps its window as the halt left it, a full stretch included, which would otherwise count
    // as Kafka setting the pace for as long as the relay stays halted.
    const { events, bytes, windowFullMs } = this.ended ? { events: 0, bytes: 0, windowFullMs: 0 } : view.inFlight;
    this.inFlight(events, bytes);
    // The pipeline keeps the total (a full stretch grows while nothing happens): the counter catches up to it.
    const fullSeconds = windowFullMs / 1000;
    if (fullSeconds > this.windowFullCounted) this.windowFull.inc(fullSeconds - this.windowFullCounted);
    this.windowFullCounted = Math.max(this.windowFullCounted, fullSeconds);
    this.endToEndLag.set(this.lag.lagSeconds(Date.now()));
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private count(topic: string, events: number, bytes: number): void {
    let counters = this.byTopic.get(topic);
    if (!counters) this.byTopic.set(topic, (counters = { events: this.eventsTotal.labels(topic), bytes: this.bytesTotal.labels(topic) }));
    counters.events.inc(events);
    counters.bytes.inc(bytes);
  }

  /** What this process runs, for dashboards that compare instances across a rolling upgrade. */
  describeBuild(version: string, client: string, guarantee: string): void {
    this.build.set({ version, client, guarantee }, 1);
  }

  private counter<L extends string>(name: string, help: string, labelNames: L[]): Counter<L> {
    return new Counter({ name: `${PREFIX}${name}`, help, labelNames, registers: [this.registry] });
  }

  private gauge<L extends string = never>(name: string, help: string, labelNames: L[] = []): Gauge<L> {
    return new Gauge({ name: `${PREFIX}${name}`, help, labelNames, registers: [this.registry] });
  }
}
