import type { Logger } from '../logger.js';

/**
 * Node prints process warnings as plain text on stderr, outside the JSON log: the long-running commands log them
 * instead, one JSON line each. kafkajs's request queue sets a negative timer whenever it is not throttled, which
 * Node 23 and later report as a TimeoutNegativeWarning (harmless: Node waits 1 ms); every relay on the kafkajs
 * client would print it once, so it goes to debug.
 */
export function logProcessWarnings(logger: Logger): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning: Error & { code?: string }) => {
    const fields = { warning: warning.name, ...(warning.code ? { code: warning.code } : {}) };
    if (warning.name === 'TimeoutNegativeWarning') logger.debug(fields, warning.message);
    else logger.warn(fields, warning.message);
  });
}
