import { createServer, type AddressInfo } from 'node:net';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { RelayError } from '../../src/errors.js';
import { connectWithRetry } from '../../src/sink/connect-retry.js';
import { startCli } from '../support/cli.js';

interface Line {
  level: number | string;
  msg: string;
  code?: string;
  attempts?: number;
}

function capture(): { logger: pino.Logger; lines: Line[] } {
  const lines: Line[] = [];
  return { logger: pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Line) }), lines };
}

const retry = { initialDelayMs: 1, maxDelayMs: 2, maxDurationMs: 60_000 };
const unavailable = () => new RelayError('KAFKA_UNAVAILABLE', 'broker transport failure', { retriable: true });

/** A port nothing listens on: a connect there is refused at once. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('connectWithRetry (run and republish at their start)', () => {
  it('retries a broker that is briefly unavailable: one warn line when it starts, one connected line when it ends', async () => {
    const { logger, lines } = capture();
    let attempts = 0;
    const sink = { connect: async () => void (++attempts <= 2 && (() => { throw unavailable(); })()) };
    expect(await connectWithRetry(sink, { brokers: ['k:9092'], retry, logger, signal: new AbortController().signal })).toBe(true);
    expect(attempts).toBe(3);
    expect(lines.filter((l) => l.level === 40 || l.level === 30).map((l) => `${l.level} ${l.msg}`)).toEqual(['40 cannot connect to Kafka yet: retrying', '30 connected to Kafka']);
    expect(lines.find((l) => l.msg === 'connected to Kafka')).toMatchObject({ attempts: 2 });
  });

  it('a stop during the backoff ends it: false, no further attempt', async () => {
    const { logger } = capture();
    const stop = new AbortController();
    let attempts = 0;
    const sink = {
      connect: async () => {
        attempts++;
        stop.abort();
        throw unavailable();
      },
    };
    expect(await connectWithRetry(sink, { brokers: ['k:9092'], retry: { ...retry, initialDelayMs: 60_000, maxDelayMs: 60_000 }, logger, signal: stop.signal })).toBe(false);
    expect(attempts).toBe(1);
  });

  it('gives up after retry.maxDuration with the cause\'s code, and does not retry what is not retriable', async () => {
    const { logger } = capture();
    const down = { connect: () => Promise.reject(unavailable()) };
    await expect(connectWithRetry(down, { brokers: ['k:9092'], retry: { ...retry, maxDurationMs: 20 }, logger, signal: new AbortController().signal })).rejects.toMatchObject({
      code: 'KAFKA_UNAVAILABLE',
      message: expect.stringMatching(/^cannot connect to Kafka for \d+ s \(\d+ attempts\): broker transport failure$/) as unknown,
    });
    let attempts = 0;
    const refused = { connect: () => Promise.reject(new RelayError('KAFKA_AUTH', 'SASL authentication failed', { retriable: false, hint: 'check the credentials' })).finally(() => attempts++) };
    await expect(connectWithRetry(refused, { brokers: ['k:9092'], retry, logger, signal: new AbortController().signal })).rejects.toMatchObject({ code: 'KAFKA_AUTH' });
    expect(attempts).toBe(1);
  });
});

describe('republish, Kafka unavailable at its start', () => {
  // Before: the first failed connect ended the run (exit 1, KAFKA_UNAVAILABLE) while run retried it, and each batch
  // of a republish already running was retried for retry.maxDuration.
  it('retries the connect as run does (one warn line), and a stop signal during that ends it with INTERRUPTED after 0 events', async () => {
    const brokers = `127.0.0.1:${await closedPort()}`;
    const { child, result } = startCli([
      'republish', '--since', '2026-11-24T08:00:00Z', '--kafka-brokers', brokers, '--kafka-client', 'kafkajs',
      '--retry-initial-delay', '50ms', '--retry-max-delay', '200ms', '--postgres-url', 'postgres://u@127.0.0.1:9/app', '--json',
    ]);
    let stderr = '';
    let signalled = false;
    // Signalled once its retry began; were the run to end first, its output says how. Once: each later chunk of
    // stderr still held the line, and a second SIGINT is the forced exit (exit code null in a loaded unit run).
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (!signalled && stderr.includes('cannot connect to Kafka yet: retrying')) {
        signalled = true;
        child.kill('SIGINT');
      }
    });
    const { code, stdout } = await result;
    const lines = stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);
    expect(lines.filter((l) => l.level === 'warn').map((l) => l.msg), stderr).toEqual(['cannot connect to Kafka yet: retrying']);
    expect(JSON.parse(stdout), stderr).toMatchObject({ events: 0, interrupted: true, error: { code: 'INTERRUPTED' } });
    expect(code).toBe(1);
  });

  it('gives up after retry.maxDuration with KAFKA_UNAVAILABLE, saying how long it tried', async () => {
    const brokers = `127.0.0.1:${await closedPort()}`;
    const { result } = startCli([
      'republish', '--since', '2026-11-24T08:00:00Z', '--kafka-brokers', brokers, '--kafka-client', 'kafkajs',
      '--retry-initial-delay', '50ms', '--retry-max-delay', '200ms', '--retry-max-duration', '1s', '--postgres-url', 'postgres://u@127.0.0.1:9/app', '--json',
    ]);
    const { code, stdout, stderr } = await result;
    expect(stderr.split('\n').filter((l) => l.includes('cannot connect to Kafka yet: retrying')), stderr).toHaveLength(1);
    expect(JSON.parse(stdout), stderr).toMatchObject({ error: { code: 'KAFKA_UNAVAILABLE', message: expect.stringMatching(/^cannot connect to Kafka for \d+ s \(\d+ attempts\)/) as unknown } });
    expect(code).toBe(1);
  });
});
