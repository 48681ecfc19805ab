import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { capturingLogger } from '../support/fakes/relay-setup.js';

/** Every client the heartbeat created, and whether it was closed. */
const clients: { connected: boolean; ended: boolean }[] = [];
let releaseConnect: (() => void) | undefined;
/** Connections open at once unless a test holds them (releaseConnect opens the one held). */
let holdConnect = true;
/** What each query does: the default answers at once. */
let query: () => Promise<{ rows: never[] }> = async () => ({ rows: [] });

vi.mock('pg', () => ({
  default: {
    Client: class {
      state = { connected: false, ended: false };
      constructor() {
        clients.push(this.state);
      }
      on(): void {}
      connect(): Promise<void> {
        // A slow connection (PostgreSQL far away or restarting): it completes when the test says so.
        const opened = new Promise<void>((resolve) => (releaseConnect = () => ((this.state.connected = true), resolve())));
        if (!holdConnect) releaseConnect!();
        return opened;
      }
      query(): Promise<{ rows: never[] }> {
        return query();
      }
      async end(): Promise<void> {
        this.state.ended = true;
      }
    },
  },
}));

const { Heartbeat } = await import('../../src/source/heartbeat.js');

describe('Heartbeat', () => {
  it('closes a connection that was still being opened when it stopped (it kept the process alive and PostgreSQL connected)', async () => {
    vi.useFakeTimers();
    try {
      const heartbeat = new Heartbeat({}, 1000, 'outbox-heartbeat', pino({ level: 'silent' }));
      heartbeat.start();
      await vi.advanceTimersByTimeAsync(1000);
      expect(clients.length).toBe(1);
      // The relay stops (SIGTERM) while the beat's connection is being opened.
      await heartbeat.stop();
      releaseConnect!();
      await vi.advanceTimersByTimeAsync(5000);
      expect(clients.length).toBe(1);
      expect(clients[0]).toEqual({ connected: true, ended: true });
    } finally {
      vi.useRealTimers();
    }
  });

  it('an outage that began with a beat hanging until its query timeout counts from that beat: the end line\'s downMs includes the hang', async () => {
    vi.useFakeTimers();
    holdConnect = false;
    const { logger, lines } = capturingLogger('info');
    try {
      // The first beat's query hangs until the relay's bound on it fails it (statement timeout + connect timeout,
      // 2m10s by default: a server that stopped answering); the next beat is answered.
      let beats = 0;
      query = () => (++beats === 1 ? new Promise((_, reject) => setTimeout(() => reject(new Error('Query read timeout')), 130_000)) : Promise.resolve({ rows: [] }));
      const heartbeat = new Heartbeat({}, 1000, 'outbox-heartbeat', logger);
      heartbeat.start();
      await vi.advanceTimersByTimeAsync(1000 + 130_000 + 1000);
      await heartbeat.stop();
      expect(lines.map((l) => l.msg)).toEqual(['heartbeat failed: retrying every interval', 'heartbeat written again']);
      // From the first beat (t = 1 s) to the one answered (t = 132 s); before, from the failure (t = 131 s): 1 s.
      expect(lines[1]!.downMs).toBe(131_000);
    } finally {
      vi.useRealTimers();
      holdConnect = true;
      query = async () => ({ rows: [] });
    }
  });
});
