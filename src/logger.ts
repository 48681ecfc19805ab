import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/** JSON lines on stdout; components take a child logger (`{ module: 'source' }`) and never create their own. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'outbox-relay' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: ['password', '*.password', 'sasl.password', 'connectionString'], censor: '***' },
  });
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
