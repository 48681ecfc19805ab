import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, redactUrl, redactedSettings } from '../../src/config/relay-config.js';
import { isRelayError } from '../../src/errors.js';

const URL_PASSWORD = 'url-pa55-Zq7';
const FILE_PASSWORD = 'file-pa55-Xw3';
const SASL_PASSWORD = 'sasl-pa55-Kv9';
const QUERY_PASSWORD = 'query-pa55-Mn2';

describe('secrets in settings output', () => {
  it('masks the URL password, password query parameters and secret settings; files are named, never read into the output', () => {
    const dir = mkdtempSync(join(tmpdir(), 'redact-'));
    const passwordFile = join(dir, 'pg-password');
    writeFileSync(passwordFile, `${FILE_PASSWORD}\n`);
    const config = loadConfig({
      flags: {
        'postgres.url': `postgres://relay:${URL_PASSWORD}@db.example.com:5432/app?sslpassword=${QUERY_PASSWORD}&application_name=x`,
        'postgres.passwordFile': passwordFile,
        'kafka.brokers': 'k:9092',
        'kafka.saslMechanism': 'plain',
        'kafka.saslUsername': 'relay',
      },
      env: { OUTBOX_RELAY_KAFKA_SASL_PASSWORD: SASL_PASSWORD },
    });
    // The file's password replaces the URL's (pg would let the URL's win over an explicit password).
    expect(decodeURIComponent(new URL(config.postgres.connectionString!).password)).toBe(FILE_PASSWORD);
    const shown = JSON.stringify(redactedSettings(config));
    for (const secret of [URL_PASSWORD, FILE_PASSWORD, SASL_PASSWORD, QUERY_PASSWORD]) expect(shown).not.toContain(secret);
    const settings = redactedSettings(config);
    expect(settings['postgres.url']).toBe('postgres://relay:***@db.example.com:5432/app?sslpassword=***&application_name=x');
    expect(settings['kafka.saslPassword']).toBe('***');
    expect(settings['postgres.passwordFile']).toBe(passwordFile);
    expect(settings['kafka.saslUsername']).toBe('relay');
  });

  it('masks a connection string it cannot parse as a whole', () => {
    expect(redactUrl(`host=db password=${URL_PASSWORD}`)).toBe('***');
  });

  it('an incomplete SASL configuration is reported without its password', () => {
    let message = '';
    try {
      loadConfig({ flags: { 'kafka.brokers': 'k:9092' }, env: { OUTBOX_RELAY_KAFKA_SASL_PASSWORD: SASL_PASSWORD, OUTBOX_RELAY_KAFKA_SASL_MECHANISM: 'plain' } });
    } catch (err) {
      expect(isRelayError(err)).toBe(true);
      message = (err as Error).message;
    }
    expect(message).toMatch(/kafka.saslMechanism plain needs a user name and a password/);
    expect(message).not.toContain(SASL_PASSWORD);
  });
});

describe('secrets the URL parser does not see as secrets', () => {
  const load = (flags: Record<string, unknown>, env: Record<string, string> = {}) => loadConfig({ flags: { 'kafka.brokers': 'k:9092', ...flags }, env });
  const refusal = (run: () => unknown): Error => {
    try {
      run();
    } catch (err) {
      return err as Error;
    }
    throw new Error('expected the configuration to be refused');
  };

  it.each([
    ['no scheme', `relay:${URL_PASSWORD}@db/app`],
    ['an unencoded # in the password', `postgres://relay:1234#${URL_PASSWORD}@db/app`],
    ['an unencoded ? in the password', `postgres://relay:1234?${URL_PASSWORD}@db/app`],
  ])('a postgres.url with %s is refused, without its password, instead of being shown unmasked and connecting elsewhere', (_case, url) => {
    const err = refusal(() => load({ 'postgres.url': url }));
    expect(err.message).toMatch(/invalid flag --postgres-url: \(secret\); expected .*postgres:\/\//);
    expect(`${err.message} ${(err as { hint?: string }).hint}`).not.toContain(URL_PASSWORD);
    const fromEnv = refusal(() => load({}, { DATABASE_URL: url }));
    expect(fromEnv.message).toMatch(/DATABASE_URL/);
    expect(fromEnv.message).not.toContain(URL_PASSWORD);
  });

  it('still takes postgres:// and postgresql:// URLs, with an @ in the percent-encoded password or in the query', () => {
    expect(load({ 'postgres.url': 'postgresql://relay:p%40ss@db:5432/app?application_name=a@b' }).postgres.connectionString).toContain('db:5432');
    expect(load({ 'postgres.url': 'postgres://db/app' }).postgres.connectionString).toBe('postgres://db/app');
  });

  it('an invalid kafka.producer is not echoed: its properties may be credentials (sasl.*, ssl.*.password)', () => {
    const err = refusal(() => load({}, { OUTBOX_RELAY_KAFKA_PRODUCER: `sasl.password=${SASL_PASSWORD},Bad-Name=1` }));
    expect(err.message).toMatch(/invalid environment variable OUTBOX_RELAY_KAFKA_PRODUCER/);
    expect(err.message).toContain('Bad-Name');
    expect(err.message).not.toContain(SASL_PASSWORD);
  });

  it('an invalid kafka.producer whose password holds a comma or which was written as JSON: the piece that reads as a property name is not echoed either', () => {
    // Split at the comma, the password's second half became a "name" the refusal quoted (2026-12-07: "expected 2secret: …").
    const split = refusal(() => load({}, { OUTBOX_RELAY_KAFKA_PRODUCER: `ssl.key.password=hunter,2${SASL_PASSWORD}` }));
    expect(split.message).toContain('(name not shown)');
    expect(split.message).not.toContain(SASL_PASSWORD);
    const json = refusal(() => load({}, { OUTBOX_RELAY_KAFKA_PRODUCER: `{"sasl.password":"${SASL_PASSWORD}"}` }));
    expect(json.message).not.toContain(SASL_PASSWORD);
  });

  it('relayUrl with credentials is refused, not shown (the relay’s HTTP server has no authentication, and fetch refuses them)', () => {
    const err = refusal(() => load({ relayUrl: `http://admin:${URL_PASSWORD}@relay:9464` }));
    expect(err.message).toMatch(/invalid flag --relay-url: \(secret\)|invalid flag --relay-url/);
    expect(err.message).not.toContain(URL_PASSWORD);
  });
});
