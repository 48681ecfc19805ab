import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/relay-config.js';

const load = (env: NodeJS.ProcessEnv, url?: string) => () => loadConfig({ env, flags: { 'kafka.brokers': 'k:9092', ...(url ? { 'postgres.url': url } : {}) }, required: [] });

describe('config: the PostgreSQL port', () => {
  // Before: pg handed such a port to the socket, which threw out of its connect: the operator commands exited 13
  // without a line, and run halted INTERNAL ("a defect of outbox-relay") after its connect timeout.
  it('refuses a PGPORT, a URL port parameter or a URL port that is no TCP port, naming where it came from (CONFIG_INVALID, exit 2)', () => {
    expect(load({ PGPORT: '99999' })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('environment variable PGPORT is not a TCP port (1 to 65535): "99999"') }));
    expect(load({ PGPORT: '0' }, 'postgres://u@h/db')).toThrow(expect.objectContaining({ message: expect.stringContaining('PGPORT is not a TCP port') }));
    expect(load({}, 'postgres://u@h/db?port=abc')).toThrow(expect.objectContaining({ message: expect.stringContaining('the port parameter of postgres.url (--postgres-url / OUTBOX_RELAY_POSTGRES_URL) is not a TCP port (1 to 65535): "abc"') }));
    expect(load({ DATABASE_URL: 'postgres://u@h/db?port=5x' })).toThrow(expect.objectContaining({ message: expect.stringContaining('the port parameter of DATABASE_URL') }));
  });

  it('takes the port pg takes: the URL\'s parameter over its port over PGPORT', () => {
    expect(load({ PGPORT: '99999' }, 'postgres://u@h:6432/db')).not.toThrow();
    expect(load({ PGPORT: 'x' }, 'postgres://u@h/db?port=6432')).not.toThrow();
    expect(load({ PGPORT: '5433' })).not.toThrow();
    expect(load({})).not.toThrow();
  });
});
