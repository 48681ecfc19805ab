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
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    signalled = true;
    logger.info({ signal }, 'signal received: shutting down');
    const watchdog = setTimeout(() => {
      logger.error({ graceMs }, 'shutdown did not finish in time: exiting');
      process.exit(1);
    }, graceMs + 5000);
    watchdog.unref();
    stop().then(resolveStopped, (err: unknown) => {
      logger.error({ err }, 'error during shutdown');
      resolveStopped();
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return { stopped };
}
