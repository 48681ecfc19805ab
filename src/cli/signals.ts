import type { Logger } from 'pino';

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
      logger.error({ code: 'SHUTDOWN_INTERRUPTED', signal, fix: 'nothing to fix: events not yet confirmed are sent again by the next relay; send one signal and wait shutdownGrace to drain' }, 'second signal: exiting now without draining');
      process.exit(1);
    }
    signalled = true;
    logger.info({ signal }, 'signal received: shutting down');
    const watchdog = setTimeout(() => {
      logger.error({ code: 'SHUTDOWN_TIMEOUT', graceMs, fix: 'events not yet confirmed are sent again by the next relay; if Kafka is slow to acknowledge, raise shutdownGrace (and the orchestrator\'s grace period with it)' }, 'shutdown did not finish in time: exiting');
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
