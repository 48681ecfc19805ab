import { createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startCli } from '../support/cli.js';

describe('republish, a stop signal while it connects to Kafka', () => {
  // A broker that accepts and never answers: the client's connect ends only at its own timeout, after which
  // republish gave up (KAFKA_UNAVAILABLE, exit 1) as if the signal had not come. run's start does not wait for it.
  it.each(['rdkafka', 'kafkajs'])('stops there (%s): INTERRUPTED after 0 events and where to go on, not KAFKA_UNAVAILABLE at the connect\'s timeout', async (client) => {
    const sockets = new Set<Socket>();
    let connecting!: () => void;
    const reached = new Promise<void>((resolve) => (connecting = resolve));
    const silent = createServer((socket) => {
      sockets.add(socket.on('error', () => undefined));
      connecting();
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const brokers = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
      // PostgreSQL is asked only once Kafka is connected: a closed port, never reached.
      const { child, result } = startCli(['republish', '--since', '2026-11-24T08:00:00Z', '--kafka-brokers', brokers, '--kafka-client', client, '--postgres-url', 'postgres://u@127.0.0.1:9/app', '--json']);
      await reached;
      child.kill('SIGINT');
      const { code, stdout, stderr } = await result;
      expect(JSON.parse(stdout), stderr).toMatchObject({
        events: 0,
        interrupted: true,
        resumeSince: '2026-11-24T08:00:00Z',
        error: { code: 'INTERRUPTED', message: 'republish interrupted after 0 event(s)', fix: "run the same command with --since '2026-11-24T08:00:00Z' (rows from that time on are sent again)" },
      });
      const errors = stderr.split('\n').filter((l) => l.includes('"level":"error"'));
      expect(errors.map((l) => (JSON.parse(l) as { msg: string; code: string }).code)).toEqual(['INTERRUPTED']);
      expect(code).toBe(1);
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });
});
