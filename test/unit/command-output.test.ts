import { describe, expect, it } from 'vitest';
import { humanLines, outputMode } from '../../src/cli/command-output.js';
import { createLogger } from '../../src/logger.js';

describe('one-shot command output', () => {
  it('--json wins; else a terminal gets readable lines and anything else JSON log lines', () => {
    expect(outputMode(true, true)).toBe('json');
    expect(outputMode(false, true)).toBe('terminal');
    expect(outputMode(false, false)).toBe('log');
  });

  it('log lines on a terminal: time, level, message, then the fields (the settings dump left out, spaces quoted)', () => {
    const lines: string[] = [];
    const logger = createLogger('info', humanLines({ write: (text) => lines.push(text) }));
    logger.child({ module: 'sink' }).warn({ settings: { slot: 'x' }, code: 'KAFKA_UNAVAILABLE', err: 'broker down', n: 3 }, 'Kafka unavailable');
    logger.debug('not at info');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d warn  Kafka unavailable {2}module=sink code=KAFKA_UNAVAILABLE err="broker down" n=3\n$/);
  });
});
