import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { LogLine } from '../support/fakes/relay-setup.js';

/** The command's log lines. */
const lines: LogLine[] = [];
/** Called once the command runs the relay: its signal handlers are in place. */
let running: () => void = () => undefined;

vi.mock('../../src/logger.js', async (original) => ({
  ...(await original<typeof import('../../src/logger.js')>()),
  createLogger: () => pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) }),
}));
// In this process the command must not arm its exit.
vi.mock('../../src/process-exit.js', async (original) => ({ ...(await original<typeof import('../../src/process-exit.js')>()), exitSoonAfterClose: () => undefined }));
vi.mock('../../src/sink/create-sink.js', () => ({ createSink: async () => ({ connect: async () => undefined, send: async () => undefined, close: async () => undefined }) }));
vi.mock('../../src/pipeline/delivery-strategy.js', async () => ({
  deliveryStrategy: () => ({ sink: {}, createDelivery: () => undefined, observer: {}, reportPosition: (lsn: bigint) => lsn, close: async () => undefined }),
}));
// A relay that streams until it is stopped. Its stop drained and confirmed everything, and ends 3.5 s after the
// signal with a grace of 0: the replication connection's close, PostgreSQL not answering, took its bound (closeBy less
// the 1 s it leaves for the clients after it).
vi.mock('../../src/pipeline/relay.js', () => ({
  SHUTDOWN_MARGIN_MS: 5000,
  Relay: class {
    currentState = 'streaming';
    private stopped!: () => void;
    private readonly stopping = new Promise<void>((resolve) => (this.stopped = resolve));
    async run() {
      running();
      await this.stopping;
      return { state: 'stopped' };
    }
    async stop() {
      await new Promise((resolve) => setTimeout(resolve, 3500));
      this.stopped();
    }
  },
}));
// PostgreSQL stopped answering (a network path that drops its packets): closing a side connection waits out its
// bound too (SideConnection.close, 2 s), after the stop, past the watchdog at 5 s.
class SideTask {
  start() {}
  stop() {
    return new Promise<void>((resolve) => setTimeout(resolve, 2000));
  }
}
vi.mock('../../src/source/heartbeat.js', () => ({ Heartbeat: SideTask }));
vi.mock('../../src/source/publication-watch.js', () => ({ PublicationWatch: SideTask }));
vi.mock('../../src/source/slot-lag-probe.js', () => ({ SlotLagProbe: class { start() {} async stop() {} } }));

afterEach(() => {
  process.exitCode = undefined;
  running = () => undefined;
  lines.length = 0;
  process.removeAllListeners('SIGTERM');
  process.removeAllListeners('SIGINT');
  vi.restoreAllMocks();
  vi.useRealTimers();
});

describe('run: a stop with shutdownGrace 0 and PostgreSQL not answering, whose side connections take their close bound after it', () => {
  it('the watchdog exits with the stop\'s code 0 and a warn line, not SHUTDOWN_TIMEOUT: the exit code is set before those closes', async () => {
    const exits: (number | undefined)[] = [];
    vi.spyOn(process, 'exit').mockImplementation(((code?: number) => {
      exits.push(code);
      throw new Error('exited');
    }) as never);
    const { runCommand } = await import('../../src/cli/commands/run.js');
    const started = new Promise<void>((resolve) => (running = resolve));
    void runCommand().parseAsync(['--postgres-url', 'postgres://u@h/db', '--kafka-brokers', 'b:9092', '--http-port', '0', '--shutdown-grace', '0'], { from: 'user' });
    await started;
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    process.emit('SIGTERM', 'SIGTERM');
    await expect(vi.advanceTimersByTimeAsync(5000)).rejects.toThrow('exited');
    // Before: exit 1 with SHUTDOWN_TIMEOUT ('shutdown did not finish in time'), the exit code not set yet.
    expect(exits).toEqual([0]);
    expect(lines.filter((l) => l.level >= 40).map((l) => l.msg)).toEqual(['stopped, but closing the clients did not finish within shutdownGrace + 5 s: exiting without waiting for them']);
  });
});
