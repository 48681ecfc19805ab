import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/relay-config.js';

const load = (url: string) => () => loadConfig({ env: {}, flags: { 'kafka.brokers': 'k:9092', 'postgres.url': url }, required: [] });

describe('config: TLS files named in postgres.url', () => {
  // Before: pg read them only when it connected, and a missing one threw out of its connect: run halted INTERNAL
  // ("a defect of outbox-relay: report it") and stayed up.
  it('refuses a sslrootcert, sslcert or sslkey that cannot be read, naming the parameter and the path (CONFIG_INVALID, exit 2)', () => {
    expect(load('postgres://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem')).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('the sslrootcert parameter of postgres.url names /nonexistent/ca.pem, which cannot be read: ENOENT') }),
    );
    expect(load('postgres://u@h/db?sslcert=/nonexistent/c.pem&sslkey=/nonexistent/k.pem')).toThrow(expect.objectContaining({ message: expect.stringMatching(/sslcert parameter .*sslkey parameter/s) }));
  });

  it('takes files it can read', () => {
    const ca = join(mkdtempSync(join(tmpdir(), 'url-files-')), 'ca.pem');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\n');
    expect(load(`postgres://u@h/db?sslmode=verify-full&sslrootcert=${ca}`)).not.toThrow();
  });
});
