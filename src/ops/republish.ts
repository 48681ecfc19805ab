import type pg from 'pg';
import type { Logger } from 'pino';
import { AckTracker, type SourceTransaction } from '../checkpoint/ack-tracker.js';
import { guaranteeConfig } from '../config/guarantee-config.js';
import type { RelayConfig, RetryPolicy, TableMapping } from '../config/types.js';
import { TupleValues } from '../decode/pgoutput.js';
import { PAST_THE_EVENT, RelayError, asRelayError, isRelayError } from '../errors.js';
import { OutageLog, type OutageLines } from '../outage-log.js';
import { backoffDelay, settlesUnlessAborted, settlesWithin, sleep } from '../retry.js';
import { parsePgTimestamp } from '../route/envelope.js';
import { HEADER, RowMapper } from '../route/row-mapper.js';
import { checkpointTopicRefused, quotedValue } from '../route/topic-template.js';
import { quoteIdent, quoteQualified } from '../sql/quote.js';
import { classifyKafkaError } from '../sink/kafka-errors.js';
import type { Sink, SinkRecord } from '../sink/sink.js';
import { describeTable, OutboxPages, publicationRowFilter, type RowSelection } from './outbox-rows.js';
import type { Progress } from './progress.js';
import { RateLimit } from './rate-limit.js';

/** Marks a record re-sent from the table rather than relayed from the WAL. */
const REPUBLISHED_HEADER = 'outbox-republished';
const BATCH_OUTAGE: OutageLines = {
  started: 'Kafka unavailable: retrying the batch',
  ongoing: 'Kafka still unavailable: retrying the batch',
  ended: 'Kafka acknowledged the batch: republish goes on',
};

/**
 * Headers that describe the source transaction (commit LSN, commit time, xid). The table does not hold them, so a
 * re-sent record leaves them out rather than carry made-up values a consumer could mistake for a position.
 */
const TRANSACTION_HEADERS = [HEADER.lsn, HEADER.commitTime, HEADER.xid];

export interface RepublishOptions {
  selection: RowSelection;
  /** Column ordering the rows and matched by --since; default mapping.timestamp, else created_at. */
  timeColumn: string | undefined;
  batchSize: number;
  /** Events per second, on average. */
  rate: number;
  /** undefined: --dry-run, count and map only. */
  sink: Sink | undefined;
  progress: (total: number) => Progress;
  signal: AbortSignal;
  /** How the connection's owner names a failed query (withClient's classify); default: as an internal error. */
  classify?: (err: unknown) => RelayError;
}

export interface RepublishSummary {
  /** Records produced (or, with --dry-run, that would be). */
  events: number;
  /** Rows the table's include/exclude filters, or the publication's row filter, leave out, as the relay would. */
  filtered: number;
  byTopic: Record<string, number>;
  durationMs: number;
  dryRun: boolean;
  interrupted: boolean;
  /** Interrupted with --since: the --since that resumes without missing a row (see resumeSince). */
  resumeSince?: string;
  /** With --ids: the ids no outbox table holds (deleted by a cleanup job, or mistyped). */
  notFound?: string[];
}

interface TablePlan {
  mapping: TableMapping;
  mapper: RowMapper;
  pages: OutboxPages;
  total: number;
}

async function plan(client: pg.Client, config: RelayConfig, mapping: TableMapping, options: RepublishOptions, logger: Logger): Promise<TablePlan> {
  const relation = await describeTable(client, mapping);
  const mapper = RowMapper.compile(relation, mapping, { fromTable: true });
  const timeColumn = options.timeColumn ?? mapping.columns.timestamp ?? 'created_at';
  const { publication, rowFilter } = await publicationRowFilter(client, config.publication, relation);
  if (publication !== 'published') logger.warn({ publication: config.publication, table: `${mapping.schema}.${mapping.table}` }, unpublishedLine(config.publication, mapping, publication));
  const pages = new OutboxPages(client, relation, options.selection, timeColumn, mapping.columns.id, rowFilter);
  return { mapping, mapper, pages, total: await pages.count() };
}

/**
 * A publication that does not publish the table has no row filter for it: every row of the selection is sent, also
 * those a filter it had kept out of the stream (events that never went to Kafka). The way to restore a filter
 * differs: a dropped publication is made again (setup), a table taken out of one is added back (setup refuses an
 * existing publication without the table); and a publication that is not the relay's (republish's --publication,
 * not the relay's setting) is the likeliest cause of all.
 */
function unpublishedLine(publication: string, mapping: TableMapping, state: 'without-table' | 'missing'): string {
  const table = `${mapping.schema}.${mapping.table}`;
  const notTheRelays = 'or not the one the relay streams with: pass its --publication';
  return state === 'missing'
    ? `publication "${publication}" does not exist (dropped, ${notTheRelays}): republish applies no row filter to ${table} and sends every selected row; if the dropped publication had a row filter, create it again with that filter first (outbox-relay setup --row-filter …), then republish`
    : `publication "${publication}" does not publish ${table} (taken out of it, ${notTheRelays}): republish applies no row filter to it and sends every selected row; if the table had a row filter there, add it back with that filter first (ALTER PUBLICATION ${quoteIdent(publication)} ADD TABLE ${quoteQualified(mapping.schema, mapping.table)} WHERE (…);, with the filter (and the column list) the relay's PG_TABLE_NOT_PUBLISHED fix names if it saw the table published), then republish`;
}

/** The row's time stands in for the unknown commit time (CloudEvents' ce_time without mapping.timestamp). */
function rowTimeMs(text: string | null): number {
  try {
    return text === null ? Date.now() : parsePgTimestamp(text);
  } catch (err) {
    if (!isRelayError(err)) throw err;
    return Date.now();
  }
}

/**
 * Re-sends rows still in the outbox table(s) through the relay's own RowMapper, so each record has the key, value,
 * topic and headers the relay gives it, minus the transaction headers and plus `outbox-republished: true`.
 * Batches wait for Kafka's acknowledgement before the next page is read; an unavailable broker is retried as
 * the relay retries it, anything else ends the run with the position reached.
 */
export async function republish(client: pg.Client, config: RelayConfig, options: RepublishOptions, logger: Logger): Promise<RepublishSummary> {
  const started = Date.now();
  // --since and --until without an offset are checked as UTC here; PostgreSQL would read them in the server's
  // TimeZone, and select other rows than the check and the summary's times say. The resume times read back are UTC too.
  await client.query("SET TIME ZONE 'UTC'");
  const plans: TablePlan[] = [];
  for (const mapping of config.tables) plans.push(await plan(client, config, mapping, options, logger));
  const progress = options.progress(plans.reduce((n, p) => n + p.total, 0));
  // Re-sent rows confirm nothing: the tracker only gives the synthetic transactions the shape the mapper expects.
  const tracker = new AckTracker(0n);
  const checkpointTopic = guaranteeConfig(config).checkpointTopic;
  const limit = new RateLimit(options.rate, options.signal);
  const summary: RepublishSummary = { events: 0, filtered: 0, byTopic: {}, durationMs: 0, dryRun: options.sink === undefined, interrupted: false };
  let done = 0;
  tables: for (const [index, table] of plans.entries()) {
    const at = (time: string | undefined) => resumeSince(options.selection, index === plans.length - 1, time);
    const classify = options.classify ?? asRelayError;
    for (;;) {
      if (options.signal.aborted) {
        summary.interrupted = true;
        // Every page read was sent: rows from the last one's time on were not all read yet.
        summary.resumeSince = at(table.pages.lastTime);
        break tables;
      }
      // A page that cannot be read (a failover, a restart of PostgreSQL) stops the run where the last one sent did.
      const rows = await atPosition(table, at, () => table.pages.next(options.batchSize), classify);
      if (rows.length === 0) break;
      const records: SinkRecord[] = [];
      for (const row of rows) {
        const values = TupleValues.fromText(row);
        // As the relay: a row the publication's row filter leaves out was never streamed, so never produced.
        if (table.pages.unpublishedRow(row) || !table.mapper.accepts(values)) {
          summary.filtered++;
          continue;
        }
        const txn: SourceTransaction = { commitLsn: 0n, commitTimeMs: rowTimeMs(table.pages.timeOf(row)), xid: 0, readAtMs: 0, endLsn: 0n, pending: 0, tracker };
        const event = atPosition(table, at, () => {
          const mapped = table.mapper.map(values, txn);
          // As the relay refuses it (Session.enqueue): a record there could move where a restart resumes.
          if (mapped.topic === checkpointTopic) throw checkpointTopicRefused(mapped.topic);
          return mapped;
        });
        for (const name of TRANSACTION_HEADERS) delete event.headers[name];
        event.headers[REPUBLISHED_HEADER] = 'true';
        // The event's own time (mapping.timestamp), as the relay produced it: not the time of the re-send.
        records.push({ topic: event.topic, key: event.key, value: event.value, headers: event.headers, ...(event.timestampMs === undefined ? {} : { timestampMs: event.timestampMs }) });
      }
      if (options.sink && records.length > 0) await atPosition(table, at, () => sendBatch(options.sink!, records, config.retry, config.kafka.deliveryTimeoutMs, logger, options.signal));
      for (const r of records) summary.byTopic[r.topic] = (summary.byTopic[r.topic] ?? 0) + 1;
      summary.events += records.length;
      done += rows.length;
      progress.update(done);
      if (options.sink) await limit.pass(records.length);
    }
  }
  progress.finish();
  const selection = options.selection;
  if ('ids' in selection && !summary.interrupted) summary.notFound = selection.ids.filter((id) => !plans.some((p) => p.pages.found(id)));
  summary.durationMs = Date.now() - started;
  return summary;
}

/** A run stopped before it read a row (a signal while it loaded or connected to Kafka): nothing was sent. */
export function stoppedBeforeStart(selection: RowSelection, durationMs: number): RepublishSummary {
  return { events: 0, filtered: 0, byTopic: {}, durationMs, dryRun: false, interrupted: true, resumeSince: resumeSince(selection, true, undefined) };
}

/**
 * The --since with which a stopped run goes on without missing a row, given the time from which the stopped
 * table's rows were not all sent (undefined: none was): the tables are sent one after the other, so only in the
 * last one may a run resume later than the original --since (an earlier one's later tables have older rows not
 * sent yet). Undefined with --ids: the same ids again.
 */
function resumeSince(selection: RowSelection, lastTable: boolean, time: string | undefined): string | undefined {
  if (!('since' in selection)) return undefined;
  return lastTable && time !== undefined ? time : selection.since;
}

/** How to go on after a stopped run: `since` from resumeSince. */
export function resumeHint(since: string | undefined): string {
  return since === undefined ? 'run the same command again (ids already sent are sent again)' : `run the same command with --since '${since}' (rows from that time on are sent again)`;
}

/**
 * How a row the relay could not produce is got past in a republish. The relay's way (a slot advance past its commit,
 * a dead-letter policy) is not republish's: it reads no slot and has no poison policy, and advancing the slot would
 * skip live events.
 */
const PAST_THE_ROW = 'or, to get past this row, leave it out of the run (--until before its time, or --ids for the other rows)';

/** Adds the page the run stopped in to an error, with the --since that resumes instead of starting over. */
function atPosition<T>(table: TablePlan, resumeAt: (time: string | undefined) => string | undefined, work: () => T, classify: (err: unknown) => RelayError = asRelayError): T {
  const fail = (err: unknown): never => {
    const error = classify(err);
    const page = table.pages.pageStart;
    const fix = error.hint?.replace(PAST_THE_EVENT, PAST_THE_ROW);
    throw new RelayError(error.code, `${error.message} (republish of ${table.mapping.schema}.${table.mapping.table} stopped in the page starting at time ${page?.time ?? '-'}, id ${page ? quotedValue(page.id) : '-'})`, {
      cause: error,
      hint: `${fix ? `${fix}; then ` : 'fix the cause, then '}${resumeHint(resumeAt(page?.time))}`,
      details: { ...error.details, resumeFrom: page },
    });
  };
  try {
    const result = work();
    return result instanceof Promise ? (result.catch(fail) as T) : result;
  } catch (err) {
    return fail(err);
  }
}

/** One batch, acknowledged by Kafka (acks=all); an unavailable broker is retried with backoff for retry.maxDuration. */
async function sendBatch(sink: Sink, records: SinkRecord[], retry: RetryPolicy, stallTimeoutMs: number, logger: Logger, signal: AbortSignal): Promise<void> {
  const started = Date.now();
  // One outage whether the batch's trouble is a failed send or a missing answer.
  const outage = new OutageLog(logger, BATCH_OUTAGE);
  for (let attempt = 0; ; attempt++) {
    try {
      await answered(sink.send(records), started, retry, stallTimeoutMs, signal, outage);
      outage.recovered();
      return;
    } catch (err) {
      if (err instanceof Unanswered) throw err.error;
      const error = classifyKafkaError(err);
      if (signal.aborted) throw interruptedInBatch(error);
      if (!error.retriable || Date.now() - started >= retry.maxDurationMs) throw error;
      const delay = backoffDelay(retry, attempt);
      outage.failed({ code: error.code, err: error.message, retryInMs: delay });
      await sleep(delay, signal);
      if (signal.aborted) throw interruptedInBatch(error);
    }
  }
}

/**
 * A signal while Kafka did not take the batch: the run was stopped, not given up (it exited KAFKA_UNAVAILABLE
 * with the brokers' fix); atPosition adds where to go on.
 */
function interruptedInBatch(error: RelayError): RelayError {
  return new RelayError('INTERRUPTED', `republish interrupted while Kafka had not taken the batch (${error.message})`, { cause: error, hint: 'the batch may be in Kafka or not' });
}

/** A send given up on while unanswered: not retried (its records may still be on their way). */
class Unanswered extends Error {
  constructor(readonly error: RelayError) {
    super(error.message);
  }
}

/**
 * Waits for a send as the delivery engine's stall watchdog does: librdkafka's plain producer has no message
 * timeout, so a silent broker never answers and the retry loop alone would wait for ever without a word. An
 * answer missing for kafka.deliveryTimeout is logged as an outage once; the run gives up after retry.maxDuration
 * from the batch's first attempt, or at a signal.
 */
async function answered(sending: Promise<void>, started: number, retry: RetryPolicy, stallTimeoutMs: number, signal: AbortSignal, outage: OutageLog): Promise<void> {
  const unanswered = () =>
    new RelayError('KAFKA_UNAVAILABLE', `Kafka has not acknowledged the batch for ${Math.round((Date.now() - started) / 1000)} s`, {
      retriable: true,
      hint: 'check the brokers (a hung or partitioned broker); retry.maxDuration bounds the wait',
    });
  // A signal ends the wait at once: checked only at each stall period, it waited up to kafka.deliveryTimeout,
  // past the watchdog when that is longer than shutdownGrace + 5 s.
  const settledOrAborted = settlesUnlessAborted(sending, signal);
  for (;;) {
    if (await settlesWithin(settledOrAborted, stallTimeoutMs)) {
      if (await settledOrAborted) break;
      throw new Unanswered(interruptedInBatch(unanswered()));
    }
    const error = unanswered();
    if (signal.aborted) throw new Unanswered(interruptedInBatch(error));
    if (Date.now() - started >= retry.maxDurationMs) throw new Unanswered(error);
    outage.failed({ code: error.code, err: error.message }, { started: 'Kafka unavailable: waiting for the batch to be acknowledged', ongoing: 'Kafka still has not acknowledged the batch' });
  }
  await sending;
}
