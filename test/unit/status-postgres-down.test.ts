import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../stack/ports.js';
import { runCli, runCliJson } from '../support/cli.js';

/** A halted relay's /readyz, as the on-call engineer met it while PostgreSQL was down. */
const HALTED = {
  ready: false,
  state: 'halted',
  confirmedLsn: '0/153BD10',
  deliveredLsn: '0/153BD10',
  inFlightEvents: 0,
  inFlightBytes: 0,
  windowFullForMs: 0,
  producerConnected: true,
  halt: { code: 'PG_SLOT_LOST', message: 'replication slot "outbox_relay" was invalidated (fake)', fix: 'recover (fake)' },
};

/** The same relay reconnecting: most likely to the PostgreSQL that is down. */
const RECONNECTING = { ...HALTED, state: 'reconnecting', halt: undefined, reconnecting: { system: 'PostgreSQL', code: 'PG_STREAM_FAILED', message: 'connection refused', fix: null, since: '2026-12-08T00:00:00.000Z' } };

let readiness: Record<string, unknown> = HALTED;
let relay: Server;
let relayUrl: string;
let pgUrl: string;

beforeAll(async () => {
  relay = createServer((req, res) => {
    res.writeHead(req.url === '/readyz' ? 503 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(readiness));
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  relayUrl = `http://127.0.0.1:${(relay.address() as { port: number }).port}`;
  pgUrl = `postgres://relay@127.0.0.1:${await freePort()}/app`;
});

afterAll(() => new Promise((resolve) => relay.close(resolve)));

describe('status with PostgreSQL down and the relay answering', () => {
  it("a halted relay: its readiness rows and PostgreSQL's failure with its fix; the halt is the error, RELAY_HALTED, exit 4", async () => {
    readiness = HALTED;
    // Before: exit 1 (PG_CONNECT_FAILED), where the same halted relay with PostgreSQL up exits 4: a script watching
    // for 4 missed the halt while PostgreSQL was down.
    const result = await runCli(['status', '--postgres-url', pgUrl, '--relay-url', relayUrl]);
    expect(result.code).toBe(4);
    expect(result.stdout).toMatch(/^postgres +not reachable \(PG_CONNECT_FAILED\): cannot connect to PostgreSQL: .*ECONNREFUSED/m);
    expect(result.stdout).toMatch(/^postgres_fix +no PostgreSQL server is accepting connections at 127\.0\.0\.1:\d+/m);
    expect(result.stdout).toMatch(/^relay +not ready \(HTTP 503 from http:\/\/127\.0\.0\.1:\d+\/readyz\)$/m);
    expect(result.stdout).toMatch(/^state +halted$/m);
    expect(result.stdout).toMatch(/^halt_code +PG_SLOT_LOST$/m);
    expect(result.stderr).toMatch(/^outbox-relay: RELAY_HALTED: the relay halted with PG_SLOT_LOST: .*\n {2}fix: recover \(fake\)$/m);
  });

  it('--json: the relay beside the error, slot and publication null (not read), PostgreSQL\'s failure as postgresError', async () => {
    readiness = HALTED;
    const result = await runCliJson(['status', '--postgres-url', pgUrl, '--relay-url', relayUrl]);
    expect(result.code).toBe(4);
    expect(result.json).toMatchObject({
      slot: null,
      publication: null,
      postgresError: { code: 'PG_CONNECT_FAILED', fix: expect.stringContaining('no PostgreSQL server is accepting connections') as unknown },
      relay: { reachable: true, readiness: { state: 'halted' } },
      error: { code: 'RELAY_HALTED' },
    });
  });

  it("a relay not ready (reconnecting): PostgreSQL's failure is the error, PG_CONNECT_FAILED, exit 1", async () => {
    readiness = RECONNECTING;
    const result = await runCli(['status', '--postgres-url', pgUrl, '--relay-url', relayUrl]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^state +reconnecting$/m);
    expect(result.stderr).toMatch(/^outbox-relay: PG_CONNECT_FAILED: cannot connect to PostgreSQL: .*\n {2}fix: no PostgreSQL server is accepting connections at 127\.0\.0\.1:\d+/m);
    const json = await runCliJson(['status', '--postgres-url', pgUrl, '--relay-url', relayUrl]);
    expect(json.code).toBe(1);
    expect(json.json).toMatchObject({ postgresError: { code: 'PG_CONNECT_FAILED' }, error: { code: 'PG_CONNECT_FAILED' } });
  });
});
