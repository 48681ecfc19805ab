import type { Logger } from 'pino';
import { RelayError } from '../errors.js';
import { SHUTDOWN_MARGIN_MS } from '../pipeline/relay.js';
import { onStopSignals } from './early-signals.js';
import { printErrorJson } from './exit.js';
import { exitNow } from '../process-exit.js';
import { finishHeldLogBy } from '../log-pipe.js';

/**
 * After the watchdog's exit, how long log lines that a stalled reader of stdout has not taken may still wait for it
 * (log-pipe.ts): every exit after a stop signal is over by shutdownGrace + SHUTDOWN_MARGIN_MS + this, which the
 * orchestrator's grace period in docs/kubernetes.md (35 s for the default 25 s) covers with 2.5 s to spare. The
 * exit's own 5 s wait came on top of the watchdog's deadline: up to grace + 10 s, cut by that SIGKILL.
 */
const HELD_LOG_MS = 2500;

/** How long after a stop signal the process is gone at the latest: the watchdog's exit, its held log lines written or given up. */
export function latestExitMs(graceMs: number): number {
  return graceMs + SHUTDOWN_MARGIN_MS + HELD_LOG_MS;
}

const UNDRAINED_FIX =
  'nothing is lost: events not yet acknowledged are sent again after the restart; if drains need longer, raise shutdownGrace (and the orchestrator’s termination grace period above it)';

export interface SignalOptions {
  /**
   * The fix of a stop cut short: the relay's by default (a restart sends again what was not acknowledged). A
   * function is asked when the stop is cut short, so that the fix names the position reached by then (replay).
   */
  undrainedFix?: string | (() => string);
  /** The command prints one JSON document (--json): a stop cut short prints its error as that document too. */
  json?: boolean;
}

/**
 * First SIGTERM/SIGINT: graceful stop (drain, confirm, close). A second signal, or the grace period plus a
 * margin, forces the exit: a stuck drain must never keep a pod from terminating. A stop that ended, and whose
 * command already set its exit code (run: drained or not, the position reported to PostgreSQL), is not a failed
 * shutdown if a client's close then outlasts the margin: the process exits with that code, with a warn line.
 * A signal received while the bin was still loading (cli/early-signals.ts) is handled here as if it came now.
 */
export function handleSignals(logger: Logger, graceMs: number, stop: () => Promise<void>, options: SignalOptions = {}): { stopped: Promise<void> } {
  const { undrainedFix = UNDRAINED_FIX, json = false } = options;
  /** Exit 1 with the one error line; with --json also the error document, where a script waits for the result. */
  const fail = (code: 'SHUTDOWN_TIMEOUT' | 'SHUTDOWN_FORCED', message: string, fields: Record<string, unknown>): never => {
    const fix = typeof undrainedFix === 'function' ? undrainedFix() : undrainedFix;
    logger.error({ ...fields, code, fix }, message);
    if (json) printErrorJson(new RelayError(code, message, { hint: fix }));
    return exitNow(1);
  };
  let signalled = false;
  let stopEnded = false;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      // The stop ended and its command decided the outcome (drained or not, the position reported): only the
      // clients' close is cut short, as at the watchdog below.
      if (stopEnded && process.exitCode !== undefined) {
        logger.warn({ signal }, 'second signal after the stop ended: exiting without waiting for the clients to close');
        exitNow();
      }
      fail('SHUTDOWN_FORCED', 'second signal: exiting now', { signal });
    }
    signalled = true;
    finishHeldLogBy(Date.now() + latestExitMs(graceMs));
    logger.info({ signal }, 'signal received: shutting down');
    const watchdog = setTimeout(() => {
      if (stopEnded && process.exitCode !== undefined) {
        logger.warn({ graceMs }, 'stopped, but closing the clients did not finish within shutdownGrace + 5 s: exiting without waiting for them');
        exitNow();
      }
      fail('SHUTDOWN_TIMEOUT', 'shutdown did not finish in time: exiting', { graceMs });
    }, graceMs + SHUTDOWN_MARGIN_MS);
    watchdog.unref();
    stop().then(() => {
      stopEnded = true;
      resolveStopped();
    }, (err: unknown) => {
      logger.error({ code: 'INTERNAL', err, fix: 'report this; events not yet confirmed are sent again by the next relay' }, 'error during shutdown');
      resolveStopped();
    });
  };
  onStopSignals(onSignal);
  return { stopped };
}
