import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * JSON lines on stdout (or `destination`); components take a child logger (`{ module: 'source' }`) and never
 * create their own. Written synchronously: pino's default destination hands each write to libuv's thread pool, and
 * an exit that does not wait for that pool (process-exit.ts) lost the error line whose write had not run yet, queued
 * behind a librdkafka call blocked on a broker that stopped answering, or not yet given a core. No line is written
 * per delivered event.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    // Every exit other than 0 writes one error line with its code and fix: fatal (no line of the relay's is fatal)
    // and silent hid it, and the process ended 1 without a word.
    level: level === 'fatal' || level === 'silent' ? 'error' : level,
    base: { service: 'outbox-relay' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: ['password', '*.password', 'sasl.password', 'connectionString'], censor: '***' },
  };
  return pino(options, destination ?? pino.destination({ dest: 1, sync: true }));
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
