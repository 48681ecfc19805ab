import { describe, expect, it } from 'vitest';
import { relayUrlOf } from '../../src/cli/commands/status.js';
import { loadConfig } from '../../src/config/relay-config.js';

const config = (env: Record<string, string>, flags: Record<string, string> = {}) => loadConfig({ env: { OUTBOX_RELAY_POSTGRES_URL: 'postgres://u@h/db', ...env }, flags, required: [] });

describe("status: where it reads the relay's /readyz", () => {
  it('by default, at the relay\'s own http.port and http.host, as health probes it (a wildcard host as the loopback)', () => {
    // Before: http://127.0.0.1:9464 whatever http.port said, and status reported a relay on 8080 as not reachable.
    expect(relayUrlOf(config({ OUTBOX_RELAY_HTTP_PORT: '8080' }))).toBe('http://127.0.0.1:8080');
    expect(relayUrlOf(config({ OUTBOX_RELAY_HTTP_PORT: '8080', OUTBOX_RELAY_HTTP_HOST: '10.0.0.5' }))).toBe('http://10.0.0.5:8080');
    expect(relayUrlOf(config({ OUTBOX_RELAY_HTTP_HOST: '::' }))).toBe('http://127.0.0.1:9464');
    expect(relayUrlOf(config({ OUTBOX_RELAY_HTTP_HOST: '::1' }))).toBe('http://[::1]:9464');
    expect(relayUrlOf(config({}))).toBe('http://127.0.0.1:9464');
  });

  it('at relayUrl when it is set (--relay-url, OUTBOX_RELAY_RELAY_URL), whatever http.port says', () => {
    expect(relayUrlOf(config({ OUTBOX_RELAY_HTTP_PORT: '8080' }, { relayUrl: 'http://relay-0.relay:9000' }))).toBe('http://relay-0.relay:9000');
    expect(relayUrlOf(config({ OUTBOX_RELAY_HTTP_PORT: '8080', OUTBOX_RELAY_RELAY_URL: 'http://relay-1:9100' }))).toBe('http://relay-1:9100');
  });
});
