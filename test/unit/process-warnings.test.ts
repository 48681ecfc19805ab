import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { logProcessWarnings } from '../../src/cli/process-warnings.js';
import { createLogger } from '../../src/logger.js';

describe('process warnings', () => {
  const before = process.listeners('warning');
  afterEach(() => {
    process.removeAllListeners('warning');
    for (const listener of before) process.on('warning', listener);
  });

  it('become JSON log lines instead of text on stderr; kafkajs’s negative timer only at debug', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(JSON.parse(chunk.toString())), done()) });
    logProcessWarnings(createLogger('debug', sink));
    expect(process.listeners('warning')).toHaveLength(1);
    process.emitWarning('something is deprecated', { type: 'DeprecationWarning', code: 'DEP0999' });
    // What Node 23+ emits for kafkajs's timer (Node 20 does not check): the same name and text.
    process.emitWarning('-5 is a negative number.\nTimeout duration was set to 1.', 'TimeoutNegativeWarning');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(lines.map(({ level, warning, code, msg }) => ({ level, warning, code, msg }))).toEqual([
      { level: 'warn', warning: 'DeprecationWarning', code: 'DEP0999', msg: 'something is deprecated' },
      { level: 'debug', warning: 'TimeoutNegativeWarning', code: undefined, msg: expect.stringContaining('negative number') },
    ]);
  });
});
