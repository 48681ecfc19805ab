import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * JSON lines on stdout (or `destination`); components take a child logger (`{ module: 'source' }`) and never
 * create their own. Written synchronously: pino's default destination writes through libuv's thread pool, where a
 * librdkafka call blocked on a broker that stopped answering holds a thread up to its timeout, and an exit that must
 * not wait for it (process-exit.ts) lost the error line still queued there. No line is written per delivered event.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
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
