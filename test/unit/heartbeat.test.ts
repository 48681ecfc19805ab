import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';

/** Every client the heartbeat created, and whether it was closed. */
const clients: { connected: boolean; ended: boolean }[] = [];
let releaseConnect: (() => void) | undefined;

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
        return new Promise((resolve) => (releaseConnect = () => ((this.state.connected = true), resolve())));
      }
      async query(): Promise<{ rows: never[] }> {
        return { rows: [] };
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
});
