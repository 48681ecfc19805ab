import { Option, type Command } from 'commander';
import { ConfigError } from '../../config/load.js';
import { loadConfig, redactedSettings } from '../../config/relay-config.js';
import type { SettingValues } from '../../config/settings.js';
import type { RelayConfig } from '../../config/types.js';
import { RelayError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { formatLsn, maxLsn, parseLsn, type Lsn } from '../../lsn.js';
import { withClient } from '../../ops/connection.js';
import { findSlot } from '../../ops/slots.js';
import { deliveryStrategy } from '../../pipeline/delivery-strategy.js';
import { combineObservers } from '../../pipeline/observer.js';
import { Relay } from '../../pipeline/relay.js';
import { ReplayBound } from '../../pipeline/replay-bound.js';
import { createSink } from '../../sink/create-sink.js';
import type { PlainSink } from '../../sink/sink.js';
import { logCrashesTo } from '../crashes.js';
import { exitSoonAfterClose } from '../../process-exit.js';
import { EXIT, errorJson, exitCodeOf, reportError } from '../exit.js';
import { addSettingOptions, commandProblems, flagValues, lsnValue } from '../options.js';
import { exitOnStopSignals } from '../ops-interrupt.js';
import { logProcessWarnings } from '../process-warnings.js';
import { handleSignals } from '../signals.js';
import { commandLogger, outputMode, printResult, type OutputMode } from '../command-output.js';
import { groupCommand } from './ops-command.js';
import { ReplayTally, replayText, type ReplaySummary } from './replay-summary.js';

function slotActive(slot: string, pid: number | null): RelayError {
  return new RelayError('PG_SLOT_ACTIVE', `replication slot "${slot}" is in use (pid ${pid ?? '?'}): a running relay holds it`, {
    hint: 'stop the relay of this slot first (a replay streams from the same slot), replay, then start it again; standbys must be stopped too, or they take the slot over',
    details: { activePid: pid },
  });
}

/**
 * The last commit LSN the replay delivers: --to-lsn, but never beyond the WAL written when the replay started
 * (everything later is new, and the relay's to deliver once it runs again).
 */
async function replayBound(config: RelayConfig, toLsn: Lsn | undefined): Promise<Lsn> {
  return withClient(config.postgres, 'a query of outbox-relay replay', async (client) => {
    const slot = await findSlot(client, config.slot);
    if (slot?.active) throw slotActive(config.slot, slot.activePid);
    const { rows } = await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
    // A commit record that starts at the current WAL position has not been written yet.
    const caughtUp = parseLsn(rows[0]!.lsn) - 1n;
    return toLsn !== undefined && toLsn < caughtUp ? toLsn : caughtUp;
  });
}

export function replayCommand(): Command {
  const command = groupCommand('replay', 'Re-deliver the outbox events committed from --start-lsn up to --to-lsn (or up to the WAL position at start), then exit.', [
    'outbox-relay replay --start-lsn 0/1A2B3C8 --kafka-brokers kafka:9092 --replay-window 6h',
    'outbox-relay replay --start-lsn 0/1A2B3C8 --to-lsn 0/1B000000 --kafka-brokers kafka:9092',
  ]);
  command.addOption(new Option('--to-lsn <lsn>', 'last commit LSN to re-deliver (inclusive); default: the WAL position when the replay starts'));
  addSettingOptions(command, 'replay');
  command.option('--json', 'print the summary as one JSON document for scripts (log lines go to stderr)');
  command.action(async (opts: Record<string, unknown>) => {
    const started = Date.now();
    const json = opts.json === true;
    let config: RelayConfig;
    let toLsn: Lsn | undefined;
    let lastCommit: Lsn;
    let logger: Logger;
    let sink: PlainSink;
    let mode: OutputMode;
    // Until the relay runs, the replay only reads (the slot, the WAL position) and loads the Kafka client: a stop
    // signal ends it at once.
    const exitEarly = exitOnStopSignals('replay', json, 'run the same replay command again');
    try {
      // --to-lsn's problems come in the same error as the settings': one round fixes them all.
      const flagProblems = commandProblems(command);
      const to = opts.toLsn as string | undefined;
      const parsedTo = to === undefined ? undefined : flagProblems.check(() => lsnValue('--to-lsn', to));
      const check = (v: SettingValues) => {
        // Only once both are read: an invalid one has its own problem.
        if (parsedTo === undefined || v.startLsn === undefined) return;
        const start = parseLsn(v.startLsn);
        if (parsedTo < start) throw new ConfigError(`--to-lsn ${to} is before --start-lsn ${formatLsn(start)}`, 'swap them');
      };
      config = loadConfig({ flags: flagValues(opts), configFile: opts.config as string | undefined, required: ['kafka.brokers', 'startLsn'], inFlightWindow: true, producing: true, problems: flagProblems, check });
      toLsn = parsedTo;
      lastCommit = await replayBound(config, toLsn);
      mode = outputMode(json);
      logger = commandLogger(config.logLevel, mode);
      logCrashesTo(logger, json);
      logProcessWarnings(logger);
      logger.info({ settings: redactedSettings(config), lastCommitLsn: formatLsn(lastCommit) }, 'starting replay');
      sink = await createSink(config.kafka, logger.child({ module: 'sink' }));
    } catch (err) {
      process.exitCode = reportError(err, json);
      exitEarly();
      return;
    }
    // The checkpoint read at start keeps a replay of old transactions from moving the stored checkpoint back.
    const strategy = deliveryStrategy(config, logger, { plainSink: sink, replay: true });
    const tally = new ReplayTally(lastCommit);
    let reached = false;
    let refused: RelayError | undefined;
    let stopping: Promise<void> | undefined;
    // One stop, whoever asks first; the callbacks below leave it unawaited, as the command awaits `stopping` itself.
    const stop = (openTransaction: 'read' | 'drop' = 'read') => (stopping ??= relay.stop({ openTransaction }));
    const bound = new ReplayBound(config.startLsn!, lastCommit, () => {
      reached = true;
      // A transaction open now lies past the bound: the bound refused every event of it.
      void stop('drop');
    });
    const relay: Relay = new Relay(config, {
      logger,
      sink: strategy.sink,
      createDelivery: bound.wrap(strategy.createDelivery),
      startPosition: strategy.startPosition,
      resumePosition: strategy.resumePosition,
      streamingOn: strategy.streamingOn,
      explainMissingSlot: strategy.explainMissingSlot,
      reportPosition: strategy.reportPosition,
      drainEnded: strategy.drainEnded,
      observer: combineObservers(strategy.observer, bound.observer, tally.observer, {
        // Taken between the check above and our connection: waiting as a standby would never end the replay.
        stateChanged: (state) => {
          if (state !== 'standby') return;
          refused = slotActive(config.slot, null);
          void stop();
        },
      }),
    });
    // What goes on from where Kafka's acknowledgements reached: a run would not (it resumes at the checkpoint, above
    // the replayed range), and the same replay again would send the whole range again.
    const finishHint = () => `to finish it: outbox-relay replay --start-lsn ${formatLsn(maxLsn(relay.deliveredLsn, config.startLsn!))} --to-lsn ${formatLsn(lastCommit)}, with the same settings`;
    // A stop cut short (a second signal, the watchdog) exits before the summary below: its error line says the same.
    handleSignals(logger, config.shutdownGraceMs, stop, { json, undrainedFix: () => `replay stopped before Kafka acknowledged its range: ${finishHint()}` });
    exitEarly();
    const outcome = await relay.run();
    if (outcome.state === 'halted') await stop();
    await stopping;
    await strategy.close();
    // Stopped by a signal before its end, or at its end with a drain the grace period cut short (Kafka slow or
    // down): not done, so an error that says where to go on from. A run after it would not send those events
    // again when they lie below the checkpoint.
    const delivered = reached && relay.deliveredLsn >= bound.readTo;
    const error =
      refused ??
      outcome.error ??
      (delivered
        ? undefined
        : new RelayError(
            'INTERRUPTED',
            reached
              ? `replay read to its end ${formatLsn(lastCommit)}, but Kafka acknowledged its events only up to ${formatLsn(relay.deliveredLsn)} within shutdownGrace`
              : `replay interrupted before its end ${formatLsn(lastCommit)}; Kafka acknowledged every event up to ${formatLsn(relay.deliveredLsn)}`,
            {
              hint: `${finishHint()}${reached ? ' (once Kafka is reachable; raise --shutdown-grace if it is only slow)' : ''}`,
            },
          ));
    const summary: ReplaySummary = {
      finished: reached && !error,
      events: tally.events,
      skipped: tally.skipped,
      byTopic: tally.byTopic,
      commitLsnRange: tally.commitLsnRange,
      startLsn: formatLsn(config.startLsn!),
      toLsn: toLsn === undefined ? null : formatLsn(toLsn),
      lastCommitLsn: formatLsn(lastCommit),
      confirmedLsn: formatLsn(relay.deliveredLsn),
      durationMs: Date.now() - started,
      ...(error ? { error: errorJson(error) } : {}),
    };
    if (summary.finished) logger.info({ ...summary }, 'replay finished');
    else if (error?.code === 'INTERRUPTED') logger.error({ ...summary, code: error.code, err: error.message, fix: error.hint }, 'replay interrupted before it reached its end');
    printResult(mode, { ...summary }, replayText(summary));
    // One error line: with --json the error is in the document; the relay's halt or giving-up line, or the
    // interrupted summary above, already said it; only a refusal (the slot in use) has no line yet.
    // The code decides the exit as for any command: a configuration refused after start (CONFIG_INVALID) is 2.
    const said = error !== refused && (error === outcome.error || error?.code === 'INTERRUPTED');
    if (error) process.exitCode = json || said ? exitCodeOf(error) : reportError(error);
    else process.exitCode = EXIT.ok;
    exitSoonAfterClose();
  });
  return command;
}
