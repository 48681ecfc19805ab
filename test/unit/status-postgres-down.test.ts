import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../stack/ports.js';
import { runCli, runCliJson } from '../support/cli.js';

/** A halted relay's /readyz, as the on-call engineer met it while PostgreSQL was down. */
const READINESS = {
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

let relay: Server;
let relayUrl: string;
let pgUrl: string;

beforeAll(async () => {
  relay = createServer((req, res) => {
    res.writeHead(req.url === '/readyz' ? 503 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(READINESS));
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  relayUrl = `http://127.0.0.1:${(relay.address() as { port: number }).port}`;
  pgUrl = `postgres://relay@127.0.0.1:${await freePort()}/app`;
});

afterAll(() => new Promise((resolve) => relay.close(resolve)));

describe('status with PostgreSQL down and the relay answering', () => {
  it("shows the relay's readiness rows, and PostgreSQL's failure as the error: PG_CONNECT_FAILED, exit 1", async () => {
    // Before: exit 1 with the error alone, nothing about the relay whose /readyz answered.
    const result = await runCli(['status', '--postgres-url', pgUrl, '--relay-url', relayUrl]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^postgres +not reachable \(PG_CONNECT_FAILED\): cannot connect to PostgreSQL: .*ECONNREFUSED/m);
    expect(result.stdout).toMatch(/^relay +not ready \(HTTP 503 from http:\/\/127\.0\.0\.1:\d+\/readyz\)$/m);
    expect(result.stdout).toMatch(/^state +halted$/m);
    expect(result.stdout).toMatch(/^halt_code +PG_SLOT_LOST$/m);
    expect(result.stderr).toMatch(/^outbox-relay: PG_CONNECT_FAILED: cannot connect to PostgreSQL: .*\n {2}fix: no PostgreSQL server is accepting connections at 127\.0\.0\.1:\d+/m);
  });

  it('--json: the relay beside the error, slot and publication null (not read)', async () => {
    const result = await runCliJson(['status', '--postgres-url', pgUrl, '--relay-url', relayUrl]);
    expect(result.code).toBe(1);
    expect(result.json).toMatchObject({ slot: null, publication: null, relay: { reachable: true, readiness: { state: 'halted' } }, error: { code: 'PG_CONNECT_FAILED' } });
  });
});
