import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { SideConnection } from '../../src/source/side-connection.js';
import { SlotLagProbe } from '../../src/source/slot-lag-probe.js';
import { closeFakePgServers, fakePgServer } from '../support/fake-pg-server.js';

afterEach(closeFakePgServers);

/** One read of a due probe against a fakePgServer(`answers`) (the interval's tick, run by hand); how often it reported a shutdown. */
async function probeOnce(answers: 'terminates' | 'shuts down'): Promise<number> {
  let stopping = 0;
  const probe = new SlotLagProbe(await fakePgServer(answers), 'outbox_relay', 60_000, () => true, () => undefined, () => void stopping++, pino({ level: 'silent' }));
  const inner = probe as unknown as { task: { connection: SideConnection }; probe(connection: SideConnection): Promise<void> };
  await inner.probe(inner.task.connection);
  await probe.stop();
  return stopping;
}

describe("SlotLagProbe: its read's connection ended with admin_shutdown (57P01)", () => {
  it('by pg_terminate_backend() on its backend, the server accepting new connections: no shutdown reported (a session with a full window kept)', async () => {
    expect(await probeOnce('terminates')).toBe(0);
  });

  it('by a fast shutdown, the server refusing new connections (57P03): the shutdown is reported', async () => {
    expect(await probeOnce('shuts down')).toBe(1);
  });
});
