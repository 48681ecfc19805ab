import type { Logger } from 'pino';
import type { ErrorCode } from '../errors.js';

const UNDRAINED_FIX =
  'nothing is lost: events not yet acknowledged are sent again after the restart; if drains need longer, raise shutdownGrace (and the orchestrator’s termination grace period above it)';

/**
 * First SIGTERM/SIGINT: graceful stop (drain, confirm, close). A second signal, or the grace period plus a
 * margin, forces the exit: a stuck drain must never keep a pod from terminating.
 */
export function handleSignals(logger: Logger, graceMs: number, stop: () => Promise<void>): { stopped: Promise<void> } {
  let signalled = false;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      logger.error({ signal, code: 'SHUTDOWN_FORCED' satisfies ErrorCode, fix: UNDRAINED_FIX }, 'second signal: exiting now');
      process.exit(1);
    }
    signalled = true;
    logger.info({ signal }, 'signal received: shutting down');
    const watchdog = setTimeout(() => {
      logger.error({ graceMs, code: 'SHUTDOWN_TIMEOUT' satisfies ErrorCode, fix: UNDRAINED_FIX }, 'shutdown did not finish in time: exiting');
      process.exit(1);
    }, graceMs + 5000);
    watchdog.unref();
    stop().then(resolveStopped, (err: unknown) => {
      logger.error({ code: 'INTERNAL', err, fix: 'report this; events not yet confirmed are sent again by the next relay' }, 'error during shutdown');
      resolveStopped();
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return { stopped };
}
