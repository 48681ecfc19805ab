import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/relay-config.js';

const load = (relayUrl: string) => () => loadConfig({ env: {}, flags: { 'postgres.url': 'postgres://u@h/db', relayUrl }, required: [] });

describe('config: relayUrl', () => {
  // Before: taken, and status then failed on it as PG_QUERY_FAILED "PostgreSQL refused the operation (SQLSTATE
  // ERR_INVALID_URL)", with PostgreSQL's fix (found by trying the CLI's exits).
  it('refuses a URL that cannot be parsed (a port past 65535, a bad IPv6 literal), naming the flag (CONFIG_INVALID, exit 2)', () => {
    for (const url of ['http://127.0.0.1:99999', 'http://[zz]']) {
      expect(load(url)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(`invalid flag --relay-url: "${url}"; expected an http(s) URL`) }));
    }
    expect(load('http://127.0.0.1:9464')).not.toThrow();
    expect(load('https://[::1]:9464/base')).not.toThrow();
  });
});
