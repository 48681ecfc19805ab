import { Option, type Command } from 'commander';
import { loadConfig } from '../../config/relay-config.js';
import { ConfigError, ConfigProblems } from '../../config/load.js';
import { parsePgTimestamp } from '../../route/envelope.js';
import { RelayError } from '../../errors.js';
import { withClient } from '../../ops/connection.js';
import { republishScope } from '../../source/republish-command.js';
import type { RowSelection } from '../../ops/outbox-rows.js';
import { createProgress } from '../../ops/progress.js';
import { republish, resumeHint, stoppedBeforeStart, type RepublishSummary } from '../../ops/republish.js';
import { connectWithRetry } from '../../sink/connect-retry.js';
import { createSink } from '../../sink/create-sink.js';
import type { Sink } from '../../sink/sink.js';
import { logCrashesTo } from '../crashes.js';
import { exitSoonAfterClose } from '../../process-exit.js';
import { EXIT, errorJson, logFailure, reportError } from '../exit.js';
import { addSettingOptions, commandProblems, flagValues } from '../options.js';
import { logProcessWarnings } from '../process-warnings.js';
import { handleSignals } from '../signals.js';
import { commandLogger, outputMode, printResult } from '../command-output.js';
import { groupCommand } from './ops-command.js';
import { keyValues } from './output.js';

function positiveInt(flag: string, text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new ConfigError(`${flag} ${JSON.stringify(text)} is not a whole number of at least 1`, `pass e.g. ${flag} 500`);
  return Number(text);
}

/**
 * PostgreSQL compares it with the column; checking it here makes a typo a usage error (exit 2), not a query failure.
 * In microseconds, as timestamptz holds them: read to the millisecond, two times less than one apart were equal.
 */
function timestamp(flag: string, text: string): number {
  try {
    // Refuses 2026-02-30 and year 0 as PostgreSQL does: taken for 1 March and 1 BC, the run failed there as
    // PG_QUERY_FAILED with PostgreSQL's generic fix.
    const ms = parsePgTimestamp(text);
    const fraction = /:\d\d\.(\d+)/.exec(text)?.[1] ?? '';
    return ms * 1000 + Number(fraction.slice(3, 6).padEnd(3, '0'));
  } catch {
    throw new ConfigError(`${flag} ${JSON.stringify(text)} is not a date and time`, "use ISO 8601 with a time, e.g. '2026-11-24T08:00:00Z' or '2026-11-24 08:00:00+00'");
  }
}

/**
 * The rows to re-send. Each problem of the flags goes to `problems`, all of them, so that one round fixes them; the
 * selection is used only once there is none (loadConfig throws them with the settings').
 */
function selection(opts: Record<string, unknown>, problems: ConfigProblems): RowSelection {
  const since = opts.since as string | undefined;
  const until = opts.until as string | undefined;
  const ids = opts.ids as string | undefined;
  if ((since === undefined) === (ids === undefined)) problems.add(new ConfigError('republish needs exactly one of --since <timestamp> and --ids <id,…>', "e.g. --since '2026-11-24 08:00:00+00' or --ids 3f2a…,9c1b…"));
  const from = since === undefined ? undefined : problems.check(() => timestamp('--since', since));
  const to = until === undefined ? undefined : problems.check(() => timestamp('--until', until));
  // Only once both are read: an invalid one has its own problem.
  if (from !== undefined && to !== undefined && to <= from) problems.add(new ConfigError(`--until ${until} is not after --since ${since}`, 'swap them'));
  if (until !== undefined && since === undefined && ids !== undefined) problems.add(new ConfigError('--until goes with --since, not with --ids', 'drop --until, or select by time with --since … --until …'));
  const list = ids?.split(',').map((s) => s.trim()).filter(Boolean) ?? [];
  if (ids !== undefined && list.length === 0) problems.add(new ConfigError('--ids is empty', 'pass the event ids, comma-separated'));
  if (since === undefined) return { ids: list };
  return until === undefined ? { since } : { since, until };
}

function republishText(summary: RepublishSummary): string {
  const verb = summary.dryRun ? 'would re-send' : 're-sent';
  const head = `${summary.interrupted ? 'republish interrupted: ' : ''}${verb} ${summary.events} event(s) in ${(summary.durationMs / 1000).toFixed(1)} s`;
  return [
    head,
    keyValues(
      [
        ['left out by filters', summary.filtered],
        ...Object.entries(summary.byTopic).map(([topic, n]): [string, number] => [`topic ${topic}`, n]),
        ...(summary.notFound?.length ? [['ids not found', summary.notFound.join(', ')] as [string, string]] : []),
      ],
      '  ',
    ),
  ].join('\n');
}

export function republishCommand(): Command {
  const command = groupCommand('republish', 'Re-send rows still in the outbox table to Kafka, for gaps a replay cannot reach (a lost slot, a replay below the slot).', [
    "outbox-relay republish --since '2026-11-24T08:00:00Z' --kafka-brokers kafka:9092",
    'outbox-relay republish --ids 3f2a9c1e-…,9c1b0d2f-… --kafka-brokers kafka:9092',
    "outbox-relay republish --since '2026-11-24T08:00:00Z' --until '2026-11-24T09:00:00Z' --rate 500 --dry-run",
  ]);
  command
    .addOption(new Option('--since <timestamp>', 'rows whose time column is at or after this time (ISO 8601)'))
    .addOption(new Option('--until <timestamp>', 'with --since: only rows whose time column is before this time (ISO 8601)'))
    .addOption(new Option('--ids <id,…>', 'these event ids (the mapping.id column), comma-separated'))
    .addOption(new Option('--time-column <column>', 'column with the time a row was written: matched by --since, and the order rows are re-sent in [default: mapping.timestamp, else created_at]'))
    .addOption(new Option('--batch-size <n>', 'rows per page and per produce request, each acknowledged before the next').default('500'))
    .addOption(new Option('--rate <events/s>', 'at most this many events per second, on average').default('2000'))
    .option('--dry-run', 'count and map what would be sent; connect to no broker');
  command.option('--json', 'print the summary as one JSON document for scripts (log lines go to stderr)');
  addSettingOptions(command, 'republish');
  command.action(async (opts: Record<string, unknown>) => {
    const dryRun = opts.dryRun === true;
    const json = opts.json === true;
    let config;
    let options;
    try {
      // The flags' problems come in the same error as the settings': one round fixes them all.
      const flagProblems = commandProblems(command);
      const rows = selection(opts, flagProblems);
      const batchSize = flagProblems.check(() => positiveInt('--batch-size', opts.batchSize as string));
      const rate = flagProblems.check(() => positiveInt('--rate', opts.rate as string));
      config = loadConfig({ flags: flagValues(opts), configFile: opts.config as string | undefined, required: dryRun ? [] : ['kafka.brokers'], producing: !dryRun, problems: flagProblems });
      // loadConfig threw if any flag above had a problem: each was read.
      options = { selection: rows, batchSize: batchSize!, rate: rate! };
    } catch (err) {
      process.exitCode = reportError(err, json);
      return;
    }
    const mode = outputMode(json);
    const logger = commandLogger(config.logLevel, mode);
    logCrashesTo(logger, json);
    logProcessWarnings(logger);
    const interrupt = new AbortController();
    // Cut short (a second signal, or a page read or send that outlasts the grace), nothing re-sends the rest by
    // itself, as a relay's restart does: the fix is this command again, from the original --since.
    const since = 'since' in options.selection ? options.selection.since : undefined;
    handleSignals(logger, config.shutdownGraceMs, async () => interrupt.abort(), { undrainedFix: `republish stopped before its last batch was acknowledged: ${resumeHint(since)}`, json });
    const started = Date.now();
    let sink: Sink | undefined;
    let connected = false;
    try {
      if (!dryRun) {
        sink = await createSink(config.kafka, logger.child({ module: 'sink' }));
        // As run's start: a Kafka briefly unreachable (its brokers restarting, a network partition) is retried with
        // backoff for retry.maxDuration, as each batch is later; a signal ends the connect or its backoff at once
        // (closing the sink below ends a connect under way, which librdkafka would end only at its timeout).
        connected = await connectWithRetry(sink, { brokers: config.kafka.brokers, retry: config.retry, logger, signal: interrupt.signal });
      }
      const progress = (total: number) => createProgress('republish', total, logger, mode === 'terminal');
      const summary = dryRun || connected
        ? await withClient(config.postgres, 'a query of outbox-relay republish', (client, classify) =>
            republish(client, config, { ...options, timeColumn: opts.timeColumn as string | undefined, sink, signal: interrupt.signal, progress, classify }, logger),
            // Its tables: a refused SELECT's GRANT names the table schema-qualified (PostgreSQL names it without).
            { slot: config.slot, ...republishScope(config) },
          )
        : stoppedBeforeStart(options.selection, Date.now() - started);
      // Not finished, so not exit 0: one error says how to go on (in the --json document too, as replay's).
      const error = summary.interrupted ? new RelayError('INTERRUPTED', `republish interrupted after ${summary.events} event(s)`, { hint: resumeHint(summary.resumeSince) }) : undefined;
      const counts = { ...summary, perSecond: Math.round(summary.events / Math.max(0.001, summary.durationMs / 1000)) };
      const result = error ? { ...counts, error: errorJson(error) } : counts;
      // Before the summary, which is the last line (docs/cli.md).
      if (summary.notFound?.length) logger.warn({ notFound: summary.notFound }, `${summary.notFound.length} of the --ids are in no outbox table (deleted, or mistyped): nothing sent for them`);
      if (error) {
        logger.error({ ...counts, code: error.code, err: error.message, fix: error.hint }, 'republish interrupted');
      } else {
        logger.info(counts, 'republish finished');
      }
      printResult(mode, result, republishText(summary));
      process.exitCode = summary.interrupted ? EXIT.runtime : EXIT.ok;
    } catch (err) {
      // Once it logs, its one error is a log line, as run's and its own interrupted line (with --json: the document).
      process.exitCode = json ? reportError(err, true) : logFailure(logger, err);
    } finally {
      // A connect given up on sent nothing: no flush to wait for (kafkajs' close waited up to 5 s for the connect).
      await sink?.close({ flush: connected });
      exitSoonAfterClose();
    }
  });
  return command;
}
