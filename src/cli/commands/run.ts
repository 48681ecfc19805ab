import type { Command } from 'commander';
import { withoutPersistentStart } from '../../config/one-off-start.js';
import { loadConfig, redactedSettings } from '../../config/relay-config.js';
import { guaranteeConfig } from '../../config/guarantee-config.js';
import { isRelayError } from '../../errors.js';
import { VERSION, instanceName } from '../../instance.js';
import { RelayHealth } from '../../http/health.js';
import { startOpsServer, type OpsServer } from '../../http/server.js';
import { createLogger } from '../../logger.js';
import { RelayMetrics } from '../../metrics/relay-metrics.js';
import { combineObservers } from '../../pipeline/observer.js';
import { deliveryStrategy } from '../../pipeline/delivery-strategy.js';
import { Relay } from '../../pipeline/relay.js';
import { createSink } from '../../sink/create-sink.js';
import { DeadLetters } from '../../sink/dead-letter.js';
import { Heartbeat } from '../../source/heartbeat.js';
import { PublicationWatch } from '../../source/publication-watch.js';
import { SlotLagProbe } from '../../source/slot-lag-probe.js';
import { logCrashesTo } from '../crashes.js';
import { EXIT, logFailure, reportError } from '../exit.js';
import { addSettingOptions, commandProblems, flagValues } from '../options.js';
import { logProcessWarnings } from '../process-warnings.js';
import { exitSoonAfterClose } from '../../process-exit.js';
import { handleSignals } from '../signals.js';
import { groupCommand } from './ops-command.js';
import { republishScope } from '../../source/republish-command.js';

/** The slot-lag probe's cadence at least (statusInterval when longer); it reads only while the stream gives no WAL position. */
const SLOT_LAG_PROBE_MIN_MS = 5000;
/** How often, at least, a streaming relay checks that its tables are still published (source/publication-watch.ts). */
const PUBLICATION_CHECK_MIN_MS = 10_000;

export function runCommand(): Command {
  const command = groupCommand('run', 'Stream outbox INSERTs from the replication slot to Kafka (the daemon).', [
    'outbox-relay run --postgres-url postgres://relay@db/app --kafka-brokers kafka:9092',
    'DATABASE_URL=postgres://relay@db/app OUTBOX_RELAY_KAFKA_BROKERS=kafka:9092 outbox-relay run',
    "outbox-relay run --config /etc/outbox-relay.yaml --topic 'events.${aggregate_type}'",
  ]);
  addSettingOptions(command, 'run');
  command.action(async (opts: Record<string, unknown>) => {
    let config;
    try {
      config = loadConfig({ flags: flagValues(opts), configFile: opts.config as string | undefined, required: ['kafka.brokers'], inFlightWindow: true, producing: true, problems: commandProblems(command) });
    } catch (err) {
      process.exitCode = reportError(err);
      return;
    }
    const logger = createLogger(config.logLevel);
    logCrashesTo(logger);
    logProcessWarnings(logger);
    // Installed before anything is awaited: a SIGTERM while the Kafka client loads (a pod deleted as it starts)
    // would otherwise end the process with Node's default, exit 143 and not a line. Until the relay runs there
    // is nothing to drain: the start stops there, exit 0.
    let relay: Relay | undefined;
    let stopRequested = false;
    const signals = handleSignals(logger, config.shutdownGraceMs, async () => {
      stopRequested = true;
      await relay?.stop();
    });
    logger.info({ version: VERSION, instance: instanceName(config.slot), pid: process.pid, settings: redactedSettings(config) }, 'starting outbox-relay');
    config = withoutPersistentStart(config, logger);
    const metrics = new RelayMetrics();
    metrics.describeBuild(VERSION, config.kafka.client, guaranteeConfig(config).guarantee);
    const health = new RelayHealth(config.statusIntervalMs, config.kafka.deliveryTimeoutMs);
    let sink;
    try {
      sink = await createSink(config.kafka, logger.child({ module: 'sink' }));
    } catch (err) {
      process.exitCode = logFailure(logger, err);
      return;
    }
    const strategy = deliveryStrategy(config, logger, { plainSink: sink, registry: metrics.registry });
    const observer = combineObservers(metrics, health, strategy.observer);
    let deadLetters: DeadLetters | undefined;
    try {
      if (config.delivery.onPoison === 'dead-letter') {
        deadLetters = new DeadLetters(sink, config.delivery.deadLetterTopic, logger.child({ module: 'dead-letter' }), observer, strategy.sink !== sink, guaranteeConfig(config).checkpointTopic);
      }
    } catch (err) {
      process.exitCode = logFailure(logger, err);
      return;
    }
    const created = new Relay(config, {
      logger,
      sink: strategy.sink,
      createDelivery: strategy.createDelivery,
      startPosition: strategy.startPosition,
      resumePosition: strategy.resumePosition,
      streamingOn: strategy.streamingOn,
      explainMissingSlot: strategy.explainMissingSlot,
      reportPosition: (confirmed) => metrics.reported(strategy.reportPosition(confirmed), confirmed),
      drainEnded: strategy.drainEnded,
      observer,
      onPoison: deadLetters && ((event, error, stop, kafka) => deadLetters.handle(event, error, stop, kafka)),
    });
    let server: OpsServer | undefined;
    if (config.http.port !== 0) {
      try {
        // Up before the relay connects: probes must see a standby or a relay still waiting for Kafka.
        server = await startOpsServer(config.http, { logger: logger.child({ module: 'http' }), relay: created, health, metrics });
      } catch (err) {
        if (!isRelayError(err)) throw err;
        logger.error({ code: err.code, err: err.message, fix: err.hint }, 'cannot start the HTTP server');
        process.exitCode = EXIT.usage;
        return;
      }
    }
    if (stopRequested) {
      await server?.close();
      await strategy.close();
      await sink.close();
      logger.info('stopped before streaming');
      process.exitCode = EXIT.ok;
      return;
    }
    relay = created;
    const outcome = relay.run();
    const heartbeat = new Heartbeat(config.postgres, config.heartbeat.intervalMs, config.heartbeat.prefix, logger.child({ module: 'heartbeat' }));
    heartbeat.start();
    const probeEveryMs = Math.max(SLOT_LAG_PROBE_MIN_MS, config.statusIntervalMs);
    // A standby's slot lag is the active instance's to report (0 here), and one still starting may turn out to be
    // one; a stopped relay reports nothing more. Also without the HTTP server: a probe refused because PostgreSQL
    // is shutting down lets a session with a full window go (Session.serverStopping).
    const probing = new Set<string>(['streaming', 'reconnecting', 'draining', 'halted', 'failed']);
    const lagProbeDue = () => probing.has(created.currentState) && metrics.walPositionAgeMs() > 2 * probeEveryMs;
    const slotLag = new SlotLagProbe(
      config.postgres,
      config.slot,
      probeEveryMs,
      lagProbeDue,
      (walEnd, bytes) => metrics.slotLagProbed(walEnd, bytes),
      () => created.serverStopping(),
      logger.child({ module: 'slot-lag' }),
    );
    slotLag.start();
    const publicationWatch = new PublicationWatch(
      config.postgres,
      { slot: config.slot, ...republishScope(config) },
      config.tables,
      created.seenPublication,
      Math.max(PUBLICATION_CHECK_MIN_MS, config.statusIntervalMs),
      () => created.streamingSince,
      (error) => created.sourceRefused(error),
      logger.child({ module: 'publication-check' }),
    );
    publicationWatch.start();
    let result;
    try {
      result = await outcome;
    } catch (err) {
      await Promise.all([heartbeat.stop(), publicationWatch.stop(), slotLag.stop()]);
      throw err;
    }
    // Set before the closes: a close that outlasts the watchdog's margin exits with it (cli/signals.ts). The side
    // connections' too: with PostgreSQL not answering each waits its 2 s, which after a stop that took its closeBy
    // (a grace under 2 s) met the watchdog before this was set: exit 1, SHUTDOWN_TIMEOUT, for a stop that lost nothing.
    // A setting refused only once the checkpoint was read (a replay window with at-most-once) is still a usage error.
    process.exitCode = result.state === 'stopped' ? EXIT.ok : result.error?.code === 'CONFIG_INVALID' ? EXIT.usage : EXIT.runtime;
    await Promise.all([heartbeat.stop(), publicationWatch.stop()]);
    await strategy.close();
    // exactly-once produces through its own transactional sink; the plain one served dead letters only.
    if (strategy.sink !== sink) await sink.close();
    // Halted: stay up, not ready; a restart would meet the same event, so an operator decides (README runbook).
    if (result.state !== 'failed') await signals.stopped;
    // Kept up while halted: that is when WAL piles up and the slot-lag alert must see it.
    await slotLag.stop();
    await server?.close();
    // Everything the relay opened is closed or given up on.
    exitSoonAfterClose();
  });
  return command;
}
