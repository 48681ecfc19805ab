import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayHealth, type RelayView } from '../../src/http/health.js';
import { startOpsServer } from '../../src/http/server.js';
import { RelayMetrics } from '../../src/metrics/relay-metrics.js';
import { SETTINGS } from '../../src/config/settings.js';
import { localAddress } from '../../src/ops/liveness-probe.js';

const relay: RelayView = { currentState: 'starting', reportedLsn: 0n, deliveredLsn: 0n, reconnectCause: undefined, outageCauses: [], inFlight: { events: 0, bytes: 0, windowFullMs: 0, windowFullSinceMs: undefined } };
const deps = { logger: pino({ level: 'silent' }), relay, health: new RelayHealth(1000), metrics: new RelayMetrics() };

async function refusal(address: { host: string; port: number }): Promise<{ code: string; message: string; hint: string }> {
  try {
    const server = await startOpsServer(address, deps);
    await server.close();
  } catch (err) {
    return err as { code: string; message: string; hint: string };
  }
  throw new Error(`listened on ${address.host}:${address.port}`);
}

describe('ops server: an address it cannot listen on', () => {
  let taken: Server;
  let port: number;

  beforeAll(async () => {
    taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    port = (taken.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => taken.close(resolve));
  });

  it('a port in use: the fix is another port', async () => {
    const error = await refusal({ host: '127.0.0.1', port });
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain('EADDRINUSE');
    expect(error.hint).toContain('choose a free port');
  });

  it('a host that is no address of this machine: the fix names http.host, not the port', async () => {
    // TEST-NET-1 (RFC 5737): never an address of this host.
    const error = await refusal({ host: '192.0.2.1', port });
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain('EADDRNOTAVAIL');
    expect(error.hint).toContain('http.host');
    expect(error.hint).not.toContain('choose a free port');
  });
});

/** Whether a TCP connection to host:port is accepted. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port }, () => {
      socket.end();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

/** A machine (or container) without IPv6 has no ::1 to connect to. */
const hasIpv6Loopback = Object.values(networkInterfaces()).some((addresses) => addresses?.some((a) => a.address === '::1'));

describe('ops server: the default http.host', () => {
  const host = SETTINGS.find((s) => s.key === 'http.host')!.default as string;

  it('is reached over IPv4 on the loopback, where status and health connect by default', async () => {
    const server = await startOpsServer({ host, port: 0 }, deps);
    try {
      expect(await accepts(localAddress(host), Number(new URL(server.url).port))).toBe(true);
    } finally {
      await server.close();
    }
  });

  it.skipIf(!hasIpv6Loopback)('is reached over IPv6 too (an IPv6-only cluster probes and scrapes the pod at its IPv6 address)', async () => {
    // Before: 0.0.0.0, which takes IPv4 only: ::1 (and a pod's IPv6 address) were refused.
    const server = await startOpsServer({ host, port: 0 }, deps);
    try {
      expect(await accepts('::1', Number(new URL(server.url).port))).toBe(true);
    } finally {
      await server.close();
    }
  });
});
