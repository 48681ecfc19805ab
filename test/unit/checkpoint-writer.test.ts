import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { decodeCheckpoint } from '../../src/checkpoint/checkpoint.js';
import type { CheckpointClient, CheckpointProducer, CheckpointRecord } from '../../src/checkpoint/checkpoint-client.js';
import { CheckpointWriter } from '../../src/checkpoint/checkpoint-writer.js';
import { KafkaCheckpointStore } from '../../src/checkpoint/kafka-checkpoint-store.js';
import { classifyRdKafkaError } from '../../src/sink/rdkafka-errors.js';
import { capturingLogger } from '../support/fakes/relay-setup.js';

/**
 * A checkpoint client whose producer records what it wrote, answers after `delayMs` and fails the next `failures`
 * writes; with `hangs`, its writes and its close never answer (every broker unreachable).
 */
class FakeCheckpointClient implements CheckpointClient {
  readonly written: CheckpointRecord[] = [];
  failures = 0;
  /** What a failing write rejects with. */
  failure: unknown = new Error('Local: Message timed out');
  attempts = 0;
  /** How long each write takes before it answers. */
  delayMs = 0;
  hangs = false;
  /** A close that fails this long after it was called (after the writer stopped waiting for it). */
  closeFailsAfterMs: number | undefined;
  closed = false;

  async createTopic(): Promise<void> {}
  async readAll(): Promise<boolean> {
    return true;
  }
  producer(): CheckpointProducer {
    return {
      send: async (_topic, record) => {
        this.attempts++;
        if (this.hangs) await new Promise(() => undefined);
        if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
        if (this.failures > 0) {
          this.failures--;
          throw this.failure;
        }
        this.written.push(record);
      },
      close: async () => {
        this.closed = true;
        if (this.hangs) await new Promise(() => undefined);
        const failsAfterMs = this.closeFailsAfterMs;
        if (failsAfterMs !== undefined) await new Promise((_, reject) => setTimeout(() => reject(new Error('Local: Broker transport failure')), failsAfterMs));
      },
    };
  }
}

describe('checkpoint writer: the last position at a stop', () => {
  let client: FakeCheckpointClient;
  let warnings: { msg: string; lsn?: string }[];
  let writer: CheckpointWriter;

  beforeEach(() => {
    vi.useFakeTimers();
    client = new FakeCheckpointClient();
    warnings = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line) as { msg: string; lsn?: string }) });
    writer = new CheckpointWriter(new KafkaCheckpointStore(client, 'checkpoints', ['k:9092']), 'slot_a', 'at-least-once', 1000, logger);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const writtenLsns = () => client.written.map((r) => decodeCheckpoint(r.value, 'checkpoints').lsn);

  it('writes the newest confirmed position on close, after the periodic writes', async () => {
    writer.start();
    writer.confirmed(100n, 1);
    await vi.advanceTimersByTimeAsync(1000);
    writer.confirmed(200n, 2);
    writer.confirmed(300n, 3);
    await writer.close();
    expect(writtenLsns()).toEqual([100n, 300n]);
    expect(client.closed).toBe(true);
    expect(warnings).toEqual([]);
  });

  it("keeps the commit time of the checkpoint it started from in positions confirmed by keepalives only: a restart without new events does not erase the time a lost slot's republish needs", async () => {
    const commitTimeMs = Date.parse('2026-12-07T21:46:09.683Z');
    writer.startFrom(100n, commitTimeMs);
    writer.start();
    writer.confirmed(200n, undefined);
    await writer.close();
    const written = client.written.map((r) => decodeCheckpoint(r.value, 'checkpoints'));
    expect(written.map((c) => [c.lsn, c.commitTimeMs])).toEqual([[200n, commitTimeMs]]);
  });

  it("writes the newest position when a stop's drain ends, while the session still holds the slot; the close after it writes nothing more", async () => {
    writer.start();
    writer.confirmed(100n, 1);
    await vi.advanceTimersByTimeAsync(1000);
    writer.confirmed(300n, 3);
    await writer.drainEnded(true, Date.now() + 10_000);
    expect(writtenLsns()).toEqual([100n, 300n]);
    expect(client.closed).toBe(false);
    await writer.close();
    expect(client.attempts).toBe(2);
    expect(client.closed).toBe(true);
    expect(warnings).toEqual([]);
  });

  it('tries the last write again, with backoff, when it fails: a restart then resumes from it', async () => {
    writer.confirmed(300n, 3);
    client.failures = 2;
    const closing = writer.close();
    await vi.runAllTimersAsync();
    await closing;
    expect(client.attempts).toBe(3);
    expect(writtenLsns()).toEqual([300n]);
    expect(warnings.map((w) => w.msg)).toEqual(['cannot write the checkpoint; retrying every interval']);
  });

  it('gives up after a bounded number of attempts, says which position was not recorded, and still closes', async () => {
    writer.confirmed(300n, 3);
    client.failures = Infinity;
    const closing = writer.close();
    await vi.runAllTimersAsync();
    await closing;
    expect(client.attempts).toBe(4);
    expect(client.written).toEqual([]);
    expect(client.closed).toBe(true);
    expect(warnings.at(-1)).toMatchObject({ msg: expect.stringMatching(/^the last checkpoint was not written/), lsn: '0/12C' });
  });

  it('does not start another attempt once the stop is 5 s old: a write that hangs (a broker down) is tried once', async () => {
    writer.confirmed(300n, 3);
    client.failures = Infinity;
    client.delayMs = 6000;
    const closing = writer.close();
    await vi.runAllTimersAsync();
    await closing;
    expect(client.attempts).toBe(1);
    expect(client.closed).toBe(true);
  });

  it('gives up a write that never answers (every broker unreachable) and a close that never answers: the stop ends, saying the position was not recorded', async () => {
    writer.confirmed(300n, 3);
    client.hangs = true;
    let stopped = false;
    const closing = writer.close().then(() => (stopped = true));
    await vi.runAllTimersAsync();
    expect(stopped).toBe(true);
    await closing;
    expect(client.attempts).toBe(1);
    expect(client.closed).toBe(true);
    expect(warnings.at(-1)).toMatchObject({ msg: expect.stringMatching(/^the last checkpoint was not written/), lsn: '0/12C' });
  });

  it('a close that fails, here after the stop stopped waiting for it, does not fail the stop (nor is it an unhandled rejection)', async () => {
    writer.confirmed(300n, 3);
    client.closeFailsAfterMs = 60_000;
    const closing = writer.close();
    await vi.runAllTimersAsync();
    await closing;
    expect(writtenLsns()).toEqual([300n]);
    expect(warnings).toEqual([]);
  });

  it('a stop with less than 5 s left before the watchdog (a drain that took the grace, or a shutdownGrace of 0): the last write and the close end by its closeBy, saying the position was not recorded', async () => {
    writer.confirmed(300n, 3);
    client.hangs = true;
    const stopAt = Date.now();
    writer.drainEnded(true, stopAt + 2500);
    let endedAt: number | undefined;
    const closing = writer.close().then(() => (endedAt = Date.now()));
    await vi.runAllTimersAsync();
    await closing;
    expect(client.attempts).toBe(1);
    expect(client.closed).toBe(true);
    // Fake time: the bound the code keeps, not a measurement. The write gave up 2 s before closeBy, for the closes.
    expect(endedAt! - stopAt).toBeLessThanOrEqual(2500);
    expect(warnings.at(-1)).toMatchObject({ msg: expect.stringMatching(/^the last checkpoint was not written/), lsn: '0/12C', drained: true });
  });

  it('starts no periodic write once a stop drains (close writes the newest position): with Kafka unreachable each one left a request the exit waited for', async () => {
    writer.start();
    writer.confirmed(100n, 1);
    await vi.advanceTimersByTimeAsync(1000);
    writer.stateChanged('draining');
    writer.confirmed(200n, 2);
    await vi.advanceTimersByTimeAsync(5000);
    expect(writtenLsns()).toEqual([100n]);
    writer.drainEnded(true, Date.now() + 10_000);
    await writer.close();
    expect(writtenLsns()).toEqual([100n, 200n]);
  });

  it("after a drain the grace ended, still waits (within the stop's bound) for a write that was under way, then closes", async () => {
    writer.start();
    writer.confirmed(100n, 1);
    client.delayMs = 2000;
    await vi.advanceTimersByTimeAsync(1000);
    expect(client.attempts).toBe(1);
    writer.stateChanged('draining');
    writer.drainEnded(false, Date.now() + 10_000);
    const closing = writer.close();
    await vi.advanceTimersByTimeAsync(1000);
    expect(client.closed).toBe(false);
    await vi.runAllTimersAsync();
    await closing;
    expect(writtenLsns()).toEqual([100n]);
    expect(client.closed).toBe(true);
    expect(warnings).toEqual([]);
  });

  it('after a drain the grace ended (Kafka did not acknowledge in time), tries no last write and says which position was not recorded', async () => {
    writer.start();
    writer.confirmed(100n, 1);
    await vi.advanceTimersByTimeAsync(1000);
    writer.confirmed(300n, 3);
    writer.drainEnded(false, Date.now() + 10_000);
    await writer.close();
    expect(writtenLsns()).toEqual([100n]);
    expect(client.attempts).toBe(1);
    expect(client.closed).toBe(true);
    expect(warnings.at(-1)).toMatchObject({ msg: expect.stringMatching(/^the last checkpoint was not written/), lsn: '0/12C', drained: false });
  });

  it('writes the newest position at once when the session ends (connection lost: a standby may take the slot now), not at the next interval', async () => {
    writer.start();
    writer.confirmed(100n, 1);
    await vi.advanceTimersByTimeAsync(1000);
    writer.confirmed(200n, 2);
    writer.stateChanged('reconnecting');
    await vi.advanceTimersByTimeAsync(0);
    // Before: [100], until the next interval; a standby that took the slot meanwhile resumed at 100 and sent again.
    expect(writtenLsns()).toEqual([100n, 200n]);
    // Nothing new: no write.
    writer.stateChanged('reconnecting');
    await vi.advanceTimersByTimeAsync(0);
    expect(client.attempts).toBe(2);
    await writer.close();
  });

  it("writes nothing while a standby: the other instance's newer checkpoint is not replaced by this one's older position", async () => {
    writer.start();
    writer.confirmed(100n, 1);
    // The write at the session's end fails (Kafka slow too); the next reconnect finds the slot held by another instance.
    client.failures = 1;
    writer.stateChanged('reconnecting');
    await vi.advanceTimersByTimeAsync(0);
    writer.stateChanged('standby');
    await vi.advanceTimersByTimeAsync(5000);
    // Before: [100], written over whatever the instance now holding the slot had written.
    expect(writtenLsns()).toEqual([]);
    expect(warnings.map((w) => w.msg)).toEqual(['cannot write the checkpoint; retrying every interval']);
    // Taken back: the position read from the checkpoint becomes the floor, and later ones are written again.
    writer.startFrom(300n);
    writer.stateChanged('streaming');
    writer.confirmed(400n, 4);
    await vi.advanceTimersByTimeAsync(1000);
    expect(writtenLsns()).toEqual([400n]);
    await writer.close();
  });

  it('a standby that stops writes nothing and warns of nothing: the checkpoint is the other instance\'s', async () => {
    writer.start();
    writer.confirmed(100n, 1);
    writer.stateChanged('standby');
    await writer.drainEnded(true, Date.now() + 10_000);
    await writer.close();
    // Before: [100] written over the other's, or a warn line that it was not written.
    expect(writtenLsns()).toEqual([]);
    expect(warnings).toEqual([]);
  });

  it('says nothing at a stop when the newest position was written already', async () => {
    writer.start();
    writer.confirmed(100n, 1);
    await vi.advanceTimersByTimeAsync(1000);
    writer.drainEnded(false, Date.now() + 10_000);
    await writer.close();
    expect(writtenLsns()).toEqual([100n]);
    expect(warnings).toEqual([]);
  });
});

describe('checkpoint writer: an outage of its writes', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('ends with a line when the instance becomes a standby (it writes no more), and a failure after it takes over again starts a new one', async () => {
    vi.useFakeTimers();
    const client = new FakeCheckpointClient();
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    const writer = new CheckpointWriter(new KafkaCheckpointStore(client, 'checkpoints', ['k:9092']), 'slot_a', 'at-least-once', 1000, logger);
    writer.start();
    writer.stateChanged('streaming');
    client.failures = 100;
    writer.confirmed(100n, 1);
    await vi.advanceTimersByTimeAsync(3000);
    writer.stateChanged('standby');
    await vi.advanceTimersByTimeAsync(3000);
    writer.stateChanged('streaming');
    writer.confirmed(200n, 2);
    await vi.advanceTimersByTimeAsync(1000);
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [40, 'cannot write the checkpoint; retrying every interval'],
      [30, 'checkpoint writes stopped: this instance is a standby now; the one streaming from the slot writes them'],
      [40, 'cannot write the checkpoint; retrying every interval'],
    ]);
    client.failures = 0;
    await vi.advanceTimersByTimeAsync(1000);
    expect(lines.at(-1)?.msg).toBe('checkpoint written again');
    expect(client.written.map((r) => decodeCheckpoint(r.value, 'checkpoints').lsn)).toEqual([200n]);
    await writer.close();
  });

  it('counts from the write that began it when that write failed only at its timeout (every broker unreachable): the end line\'s downMs includes the wait', async () => {
    vi.useFakeTimers();
    const client = new FakeCheckpointClient();
    const { logger, lines } = capturingLogger('info');
    const writer = new CheckpointWriter(new KafkaCheckpointStore(client, 'checkpoints', ['k:9092']), 'slot_a', 'at-least-once', 1000, logger);
    writer.start();
    // The write at t = 1 s fails at t = 31 s (kafka.deliveryTimeout); the next, at t = 32 s, succeeds.
    client.delayMs = 30_000;
    client.failures = 1;
    writer.confirmed(100n, 1);
    await vi.advanceTimersByTimeAsync(31_000);
    client.delayMs = 0;
    await vi.advanceTimersByTimeAsync(1000);
    expect(lines.map((l) => l.msg)).toEqual(['cannot write the checkpoint; retrying every interval', 'checkpoint written again']);
    // Before, from the failure (t = 31 s): 1 s.
    expect(lines[1]!.downMs).toBe(31_000);
    await writer.close();
  });
});

describe('checkpoint writer: a refusal no retry mends', () => {
  it('the close after a halt logs it once, at warn, with its code and the fix for the checkpoint topic; no error line', async () => {
    vi.useFakeTimers();
    try {
      const client = new FakeCheckpointClient();
      const lines: { level: number; msg: string; code?: string; fix?: string; kafkaError?: number }[] = [];
      const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) });
      const writer = new CheckpointWriter(new KafkaCheckpointStore(client, 'checkpoints', ['k:9092']), 'slot_a', 'at-least-once', 1000, logger);
      // As the librdkafka checkpoint producer rejects a write the topic's ACL refuses (TOPIC_AUTHORIZATION_FAILED).
      client.failure = classifyRdKafkaError(Object.assign(new Error('Broker: Topic authorization failed'), { code: 29 }));
      client.failures = Infinity;
      writer.start();
      writer.confirmed(300n, 3);
      writer.stateChanged('halted');
      const closing = writer.close();
      await vi.runAllTimersAsync();
      await closing;
      expect(client.attempts).toBe(4);
      const warned = lines.filter((l) => l.level === 40);
      expect(warned.map((l) => l.msg)).toEqual(['cannot write the checkpoint; retrying every interval', expect.stringMatching(/^the last checkpoint was not written/)]);
      expect(warned[0]).toMatchObject({ code: 'CHECKPOINT_FAILED', kafkaError: 29, fix: expect.stringContaining('WRITE and DESCRIBE on the topic checkpoints') });
      expect(warned[0]!.fix).not.toMatch(/slot advance/);
      expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });
});
