import { isRelayError } from '../errors.js';

/** Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error. */
export const EXIT = { ok: 0, runtime: 1, usage: 2 } as const;

/** Prints an error for a person (message and fix) and returns its exit code. */
export function reportError(err: unknown, json = false): number {
  const usage = isRelayError(err) && err.code === 'CONFIG_INVALID';
  if (json) {
    const body = isRelayError(err) ? { error: { code: err.code, message: err.message, fix: err.hint } } : { error: { code: 'INTERNAL', message: String(err) } };
    process.stdout.write(`${JSON.stringify(body)}\n`);
  } else {
    const text = isRelayError(err) ? err.describe() : err instanceof Error ? (err.stack ?? err.message) : String(err);
    process.stderr.write(`outbox-relay: ${text}\n`);
  }
  return usage ? EXIT.usage : EXIT.runtime;
}
