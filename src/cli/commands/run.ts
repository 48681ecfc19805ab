import { Command } from 'commander';
import { loadConfig, redactedSettings } from '../../config/relay-config.js';
import { createLogger } from '../../logger.js';
import { Relay } from '../../pipeline/relay.js';
import { KafkaSink } from '../../sink/kafka-sink.js';
import { EXIT, reportError } from '../exit.js';
import { addSettingOptions, flagValues } from '../options.js';
import { handleSignals } from '../signals.js';

export function runCommand(): Command {
  const command = new Command('run')
    .description('Stream outbox INSERTs from the replication slot to Kafka (the daemon).')
    .addHelpText(
      'after',
      `
Examples:
  outbox-relay run --postgres-url postgres://relay@db/app --kafka-brokers kafka:9092
  DATABASE_URL=postgres://relay@db/app OUTBOX_RELAY_KAFKA_BROKERS=kafka:9092 outbox-relay run
  outbox-relay run --config /etc/outbox-relay.yaml --topic 'events.\${aggregate_type}'`,
    );
  addSettingOptions(command, ['postgres', 'source', 'kafka', 'delivery', 'ops']);
  command.action(async (opts: Record<string, unknown>) => {
    let config;
    try {
      config = loadConfig({ flags: flagValues(opts), configFile: opts.config as string | undefined, required: ['kafka.brokers'] });
    } catch (err) {
      process.exitCode = reportError(err);
      return;
    }
    const logger = createLogger(config.logLevel);
    logger.info({ settings: redactedSettings(config) }, 'starting outbox-relay');
    const relay = new Relay(config, { logger, sink: new KafkaSink(config.kafka, logger.child({ module: 'sink' })) });
    const outcome = relay.run();
    const signals = handleSignals(logger, config.shutdownGraceMs, () => relay.stop());
    const result = await outcome;
    if (result.state === 'stopped') {
      await signals.stopped;
      process.exitCode = EXIT.ok;
      return;
    }
    if (result.state === 'halted') {
      // Stay up, not ready: a restart would meet the same event; an operator decides (see README runbook).
      await signals.stopped;
    }
    process.exitCode = EXIT.runtime;
  });
  return command;
}
