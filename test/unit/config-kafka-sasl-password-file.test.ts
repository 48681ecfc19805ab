import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCliSync } from '../support/cli.js';
import { load } from '../support/config-load.js';

const passwordFile = join(mkdtempSync(join(tmpdir(), 'config-kafka-sasl-')), 'kafka-password');
writeFileSync(passwordFile, 'from-the-file\n');
const sasl = { OUTBOX_RELAY_KAFKA_SASL_MECHANISM: 'scram-sha-512', OUTBOX_RELAY_KAFKA_SASL_USERNAME: 'relay' };

interface Checked {
  settings: { key: string; value: unknown; source: string }[];
}

describe('kafka.saslPassword and kafka.saslPasswordFile both given', () => {
  it('the file’s content is the password the client gets, as postgres.passwordFile replaces the URL’s password', () => {
    const config = load({}, { ...sasl, OUTBOX_RELAY_KAFKA_SASL_PASSWORD: 'from-the-env', OUTBOX_RELAY_KAFKA_SASL_PASSWORD_FILE: passwordFile });
    expect(config.kafka.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'relay', password: 'from-the-file' });
  });

  it('config check shows kafka.saslPassword as ignored, naming the file setting that replaces it, not as a value in use', () => {
    const result = runCliSync(['config', 'check', '--json', '--kafka-brokers', 'k:9092'], { ...sasl, OUTBOX_RELAY_KAFKA_SASL_PASSWORD: 'from-the-env', OUTBOX_RELAY_KAFKA_SASL_PASSWORD_FILE: passwordFile });
    expect(result.status, result.stderr).toBe(0);
    const byKey = Object.fromEntries((JSON.parse(result.stdout) as Checked).settings.map((s) => [s.key, s]));
    expect(byKey['kafka.saslPassword']).toEqual({ key: 'kafka.saslPassword', value: null, source: 'env OUTBOX_RELAY_KAFKA_SASL_PASSWORD (ignored: kafka.saslPasswordFile replaces it)' });
    expect(byKey['kafka.saslPasswordFile']).toEqual({ key: 'kafka.saslPasswordFile', value: passwordFile, source: 'env OUTBOX_RELAY_KAFKA_SASL_PASSWORD_FILE' });
  });

  it('alone, kafka.saslPassword is shown in use (masked)', () => {
    const result = runCliSync(['config', 'check', '--json', '--kafka-brokers', 'k:9092'], { ...sasl, OUTBOX_RELAY_KAFKA_SASL_PASSWORD: 'from-the-env' });
    expect(result.status, result.stderr).toBe(0);
    expect((JSON.parse(result.stdout) as Checked).settings.find((s) => s.key === 'kafka.saslPassword')).toEqual({ key: 'kafka.saslPassword', value: '***', source: 'env OUTBOX_RELAY_KAFKA_SASL_PASSWORD' });
  });
});
