import { describe, expect, it } from 'vitest';
import { asRelayError } from '../../src/errors.js';

/** A failed write to stdout as Node reports it. */
function writeError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: failed, write`), { code, syscall: 'write', errno: -5 });
}

describe('OUTPUT_FAILED: the fix fits the write error', () => {
  // Before: one fix for all, "is full or failing: free space there", for a terminal whose ssh session had closed.
  it('EIO (a terminal that is gone) is not told to free space; a full disk still is', () => {
    const eio = asRelayError(writeError('EIO'));
    expect(eio.code).toBe('OUTPUT_FAILED');
    expect(eio.hint).toMatch(/terminal that is gone/);
    expect(eio.hint).not.toMatch(/full|free space/);
    for (const code of ['ENOSPC', 'EDQUOT']) expect(asRelayError(writeError(code)).hint).toMatch(/is full.*free space there, or send the output elsewhere/);
    expect(asRelayError(writeError('EFBIG')).hint).toMatch(/largest size allowed/);
    expect(asRelayError(writeError('EACCES')).code).toBe('INTERNAL');
  });
});
