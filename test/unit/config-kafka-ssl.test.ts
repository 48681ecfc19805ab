import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { redactedSettings } from '../../src/config/relay-config.js';
import { runCliSync } from '../support/cli.js';
import { load, refusal } from '../support/config-load.js';

const dir = mkdtempSync(join(tmpdir(), 'config-kafka-ssl-'));
const ca = join(dir, 'kafka-ca.pem');
writeFileSync(ca, '-----BEGIN CERTIFICATE-----\n(test CA)\n-----END CERTIFICATE-----\n');

interface Checked {
  settings: { key: string; value: unknown; source: string }[];
}

const checkedSsl = (env: Record<string, string>) => {
  const result = runCliSync(['config', 'check', '--json', '--kafka-brokers', 'k:9092'], env);
  expect(result.status, result.stderr).toBe(0);
  return (JSON.parse(result.stdout) as Checked).settings.find((s) => s.key === 'kafka.ssl');
};

describe('kafka.sslCaFile turns TLS on', () => {
  it('config check shows kafka.ssl as the relay uses it, true, implied by kafka.sslCaFile (as the Kubernetes examples set only the CA file)', () => {
    expect(checkedSsl({ OUTBOX_RELAY_KAFKA_SSL_CA_FILE: ca })).toEqual({ key: 'kafka.ssl', value: true, source: 'implied by kafka.sslCaFile' });
    const text = runCliSync(['config', 'check', '--kafka-brokers', 'k:9092'], { OUTBOX_RELAY_KAFKA_SSL_CA_FILE: ca });
    expect(text.stdout).toMatch(/^kafka\.ssl +true +implied by kafka\.sslCaFile$/m);
  });

  it('without a CA file kafka.ssl shows its default, and an explicit true beside one keeps its own source', () => {
    expect(checkedSsl({})).toEqual({ key: 'kafka.ssl', value: false, source: 'default' });
    expect(checkedSsl({ OUTBOX_RELAY_KAFKA_SSL_CA_FILE: ca, OUTBOX_RELAY_KAFKA_SSL: 'true' })).toEqual({ key: 'kafka.ssl', value: true, source: 'env OUTBOX_RELAY_KAFKA_SSL' });
  });

  it('the start-up settings (redactedSettings) show kafka.ssl true, and the client gets the CA', () => {
    const config = load({ 'kafka.sslCaFile': ca });
    expect(redactedSettings(config)['kafka.ssl']).toBe(true);
    expect(config.kafka.ssl).toEqual({ ca: [expect.stringContaining('(test CA)')] });
  });

  it.each([
    ['a flag', { 'kafka.ssl': 'false' }, {}],
    ['the environment', {}, { OUTBOX_RELAY_KAFKA_SSL: 'false' }],
  ])('an explicit kafka.ssl false beside it (%s) is refused, naming both settings and the fix, not ignored', (_where, flags, env) => {
    const r = refusal(() => load({ 'kafka.sslCaFile': ca, ...flags }, env));
    expect(r.code).toBe('CONFIG_INVALID');
    expect(r.message).toBe('kafka.ssl is false, but kafka.sslCaFile is given, which is read only over TLS and turns TLS on');
    expect(r.hint).toBe(
      'remove kafka.ssl (--kafka-ssl / OUTBOX_RELAY_KAFKA_SSL) to connect with TLS, verifying the brokers against the CA file; or remove kafka.sslCaFile (--kafka-ssl-ca-file / OUTBOX_RELAY_KAFKA_SSL_CA_FILE) to connect without TLS',
    );
  });

  it('an explicit false in the config file is refused too, with the other problems in the same error', () => {
    const file = join(dir, 'relay.yaml');
    writeFileSync(file, `kafka:\n  ssl: false\n  sslCaFile: ${ca}\n`);
    const r = refusal(() => load({ 'kafka.saslUsername': 'relay' }, {}, file));
    expect(r.message).toMatch(/^2 settings are invalid:/);
    expect(r.message).toContain('kafka.ssl is false, but kafka.sslCaFile is given');
    expect(r.message).toContain('kafka.saslUsername is given without kafka.saslMechanism');
  });

  it('config check refuses the contradiction with exit 2', () => {
    const result = runCliSync(['config', 'check', '--kafka-brokers', 'k:9092'], { OUTBOX_RELAY_KAFKA_SSL_CA_FILE: ca, OUTBOX_RELAY_KAFKA_SSL: 'false' });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('CONFIG_INVALID: kafka.ssl is false, but kafka.sslCaFile is given');
  });
});
