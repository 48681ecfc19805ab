import { describe, expect, it } from 'vitest';
import { ServerShutdownDetector } from '../../src/source/shutdown-detector.js';

describe('ServerShutdownDetector', () => {
  it('an idle server asking once per wal_sender_timeout/2 is not shutting down', () => {
    const detector = new ServerShutdownDetector();
    for (let t = 0; t < 60_000; t += 1500) expect(detector.replyRequested(100n, t)).toBe(false);
  });

  it('reply requests for the same WAL end as fast as the relay answers mean the server waits for us to go', () => {
    const detector = new ServerShutdownDetector();
    const answers = [0, 2, 4, 6, 8].map((t) => detector.replyRequested(100n, t));
    expect(answers).toEqual([false, false, false, false, true]);
  });

  it('a WAL end that moves is a working server, whatever the rate', () => {
    const detector = new ServerShutdownDetector();
    for (let i = 0; i < 20; i++) expect(detector.replyRequested(BigInt(100 + i), i)).toBe(false);
  });
});
