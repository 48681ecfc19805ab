import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';

describe('log.level fatal and silent', () => {
  // Before: the relay logs no line at fatal, so at either level an exit 1 ("giving up") wrote nothing at all.
  it.each(['fatal', 'silent'])('%s still writes error lines (every exit other than 0 writes one), and nothing below them', (level) => {
    const lines: string[] = [];
    const logger = createLogger(level, { write: (line: string) => void lines.push(line) });
    logger.warn('a warning');
    logger.error({ code: 'RETRIES_EXHAUSTED', fix: 'check the brokers' }, 'giving up');
    expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual([expect.objectContaining({ level: 'error', code: 'RETRIES_EXHAUSTED', fix: 'check the brokers', msg: 'giving up' })]);
  });
});
