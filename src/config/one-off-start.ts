import type { Logger } from 'pino';
import { formatLsn } from '../lsn.js';
import type { RelayConfig } from './types.js';

/**
 * `run` takes a start position (`startLsn`) only from its command line. A start position is a one-off: left in the
 * environment or a config file it would apply at every restart, so once the slot moved past it the daemon would
 * either fail forever (`REPLAY_OUT_OF_WINDOW`) or, inside a replay window, re-send the same events on every start.
 * From those sources it is ignored, with one warning saying why; `replay` honours it from anywhere.
 */
export function withoutPersistentStart(config: RelayConfig, logger: Logger): RelayConfig {
  const source = ignoredStartSource(config);
  if (source === undefined || config.startLsn === undefined) return config;
  logger.warn(
    { startLsn: formatLsn(config.startLsn), source },
    `start position from the ${source} ignored: run starts from the checkpoint or the slot; give a one-off start position as run --start-lsn, or use outbox-relay replay, and remove the setting`,
  );
  return { ...config, startLsn: undefined };
}

/** Where a start position `run` ignores came from (see withoutPersistentStart); undefined when there is none. */
export function ignoredStartSource(config: RelayConfig): string | undefined {
  const origin = config.origins.startLsn;
  if (config.startLsn === undefined || origin === 'flag') return undefined;
  return origin === 'env' ? `environment variable ${config.formerNames.startLsn ?? 'OUTBOX_RELAY_START_LSN'}` : 'config file key startLsn';
}
