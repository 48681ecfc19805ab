import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'pg-connection-string';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/relay-config.js';

const FILE_PASSWORD = 'file-pa55/#?@:%';

describe('postgres.passwordFile', () => {
  const passwordFile = join(mkdtempSync(join(tmpdir(), 'pw-')), 'pg-password');
  writeFileSync(passwordFile, `${FILE_PASSWORD}\n`);
  const passwordPgReads = (url: string) =>
    parse(loadConfig({ flags: { 'postgres.url': url, 'postgres.passwordFile': passwordFile, 'kafka.brokers': 'k:9092' }, env: {} }).postgres.connectionString!).password;

  it.each([
    ['a host', 'postgres://relay@db:5432/app'],
    ['a Unix socket given as host= (no host in the URL)', 'postgres:///app?host=/var/run/postgresql&user=relay'],
    ['a socket: URL', 'socket:/var/run/postgresql?db=app&user=relay'],
  ])('reaches pg for a URL with %s, not dropped without a word', (_case, url) => {
    expect(passwordPgReads(url)).toBe(FILE_PASSWORD);
  });
});
