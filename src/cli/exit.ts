import type { Logger } from 'pino';
import { asRelayError, type RelayError } from '../errors.js';
import { loggedDetails } from '../route/logged-id.js';
import { printJsonError } from './json-document.js';

/**
 * Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error. `status` adds what it found the running
 * relay doing, so a script or a probe can tell them apart: 3 not ready (starting, standby, reconnecting, draining, stopped,
 * Kafka unavailable), 4 halted or failed (a poison event, a schema change: an operator must act), 5 not reachable.
 * 6: a destructive command only previewed what it would do (`slot advance` without --yes-skip-events, `slot drop`
 * of a slot in use and `publication drop` while the relay's slot or another pgoutput slot of the database exists, without --force): nothing was changed,
 * and it is not a usage error either.
 */
export const EXIT = { ok: 0, runtime: 1, usage: 2, relayNotReady: 3, relayHalted: 4, relayUnreachable: 5, confirmationRequired: 6 } as const;

/**
 * Prints an error for a person (code, message and fix) and returns its exit code. Anything but a RelayError is a
 * defect: INTERNAL, with its stack after the fix in text.
 */
export function reportError(err: unknown, json = false): number {
  const error = asRelayError(err);
  // A document printed already (a result before the failure): the error goes to stderr, as without --json.
  if (!json || !printErrorJson(error)) {
    const stack = error.code !== 'INTERNAL' || !(err instanceof Error) || err.stack === undefined ? '' : `\n${err.stack}`;
    process.stderr.write(`outbox-relay: ${error.code}: ${error.describe()}${stack}\n`);
  }
  return exitCodeOf(error);
}

/**
 * With --json the error is the command's one JSON document, on stdout where a script reads the result (its log
 * lines, with this error's, go to stderr). False when the command printed its document already.
 */
export function printErrorJson(error: RelayError): boolean {
  return printJsonError({ error: errorJson(error) });
}

/** An error as a --json document holds it; `details` when it has figures (a preview's counts, the LSNs involved). */
export interface ErrorJson {
  code: string;
  message: string;
  fix: string | undefined;
  details?: Record<string, unknown>;
}

export function errorJson(error: RelayError): ErrorJson {
  return { code: error.code, message: error.message, fix: error.hint, ...(Object.keys(error.details).length > 0 ? { details: loggedDetails(error.details) } : {}) };
}

/** The exit for an error: 2 for a configuration refused, 1 for anything else. */
export function exitCodeOf(error: RelayError): number {
  return error.code === 'CONFIG_INVALID' ? EXIT.usage : EXIT.runtime;
}

/** Once the logger exists, a failure is one error line with its code and fix (what the README's log table promises). */
export function logFailure(logger: Logger, err: unknown): number {
  const error = asRelayError(err);
  logger.error({ code: error.code, err: error.message, fix: error.hint }, 'giving up');
  return exitCodeOf(error);
}
