import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/relay-config.js';
import { SETTINGS } from '../../src/config/settings.js';

const load = (flags: Record<string, unknown>) => loadConfig({ flags, env: {} });
const durations = SETTINGS.filter((s) => s.placeholder === '<duration>');

it('finds the duration settings (an empty list would run no test below)', () => {
  expect(durations.length).toBeGreaterThan(10);
});

describe('config: every duration has a documented maximum below Node’s timer limit (~24.8 days)', () => {
  it.each(durations.map((s) => [s.key, s] as const))('%s: 30d is refused at start, with the maximum named', (_key, setting) => {
    expect(() => load({ [setting.key]: '30d' })).toThrow(new RegExp(`invalid flag ${setting.flag}: "30d"; expected at most \\d+[hm]$`));
    const max = /at most (\d+)h|at most (\d+)m/.exec(setting.doc);
    expect(max, `${setting.key} documents its maximum`).not.toBeNull();
    const documented = max![1] ? `${max![1]}h` : `${max![2]}m`;
    // kafka.linger must also stay below kafka.deliveryTimeout (30 s by default).
    const room = setting.key === 'kafka.linger' ? { 'kafka.deliveryTimeout': '2m' } : {};
    expect(() => load({ [setting.key]: documented, ...room })).not.toThrow();
  });

  it('the ones the issue names', () => {
    for (const [key, value] of [['statusInterval', '30d'], ['shutdownGrace', '30d'], ['heartbeat.interval', '30d'], ['retry.initialDelay', '50d']]) {
      expect(() => load({ [key!]: value })).toThrow(/expected at most/);
    }
  });
});

describe('config: a duration without its unit is refused (it was read as milliseconds: a 30 meant as 30 s was 30 ms)', () => {
  it.each(durations.map((s) => [s.key, s] as const))('%s: a bare number in a flag, naming the flag and the setting, with the units to write', (_key, setting) => {
    expect(() => load({ [setting.key]: '30' })).toThrow(`invalid flag ${setting.flag}: "30"; expected a duration with its unit, such as 30s or 30ms (only 0 may go without)`);
  });

  it('in an environment variable and as a number in a YAML file too; 0 alone is taken', () => {
    expect(() => loadConfig({ flags: {}, env: { OUTBOX_RELAY_RETRY_MAX_DURATION: '1800' } })).toThrow(
      'invalid environment variable OUTBOX_RELAY_RETRY_MAX_DURATION: "1800"; expected a duration with its unit, such as 1800s or 1800ms (only 0 may go without)',
    );
    const fromFile = (yaml: string) => {
      const file = join(mkdtempSync(join(tmpdir(), 'cfg-')), 'relay.yaml');
      writeFileSync(file, yaml);
      return () => loadConfig({ flags: {}, env: {}, configFile: file });
    };
    expect(fromFile('shutdownGrace: 30\n')).toThrow(/invalid key "shutdownGrace" in \S+relay.yaml: 30; expected a duration with its unit, such as 30s or 30ms/);
    expect(fromFile('shutdownGrace: 0\nheartbeat:\n  interval: 0\n')()).toMatchObject({ shutdownGraceMs: 0, heartbeat: { intervalMs: 0 } });
    expect(load({ shutdownGrace: '0', 'retry.maxDuration': '1800s' })).toMatchObject({ shutdownGraceMs: 0, retry: { maxDurationMs: 1_800_000 } });
  });
});

describe('config: settings librdkafka takes as its own properties stay inside its ranges', () => {
  // Outside them librdkafka refused the property when the client was created: before, after the config check had
  // passed. kafka.requestTimeout is also socket.timeout.ms (10..300000), kafka.batchSize is batch.size (< 2^31).
  it('kafka.requestTimeout at most 5m, kafka.batchSize below 2GiB', () => {
    expect(() => load({ 'kafka.requestTimeout': '6m' })).toThrow(/invalid flag --kafka-request-timeout: "6m"; expected at most 5m/);
    expect(() => load({ 'kafka.requestTimeout': '5m' })).not.toThrow();
    expect(() => load({ 'kafka.batchSize': '2GiB' })).toThrow(/invalid flag --kafka-batch-size: "2GiB"; expected at most 2147483647 bytes/);
    expect(() => load({ 'kafka.batchSize': '1GiB' })).not.toThrow();
  });
});

describe('config: replayWindow in a config file', () => {
  const fromFile = (yaml: string) => {
    const file = join(mkdtempSync(join(tmpdir(), 'cfg-')), 'relay.yaml');
    writeFileSync(file, `kafka:\n  brokers: k:9092\n${yaml}\n`);
    return () => loadConfig({ flags: {}, env: {}, configFile: file });
  };

  it('0 (a number in YAML) releases the window, as "0" does in a flag', () => {
    expect(fromFile('replayWindow: 0')().values.replayWindow).toEqual({ kind: 'none' });
    expect(fromFile('replayWindow: 6h')().values.replayWindow).toEqual({ kind: 'duration', ms: 6 * 3_600_000 });
  });

  it('a mapping is refused naming the key (before, {kind: size} passed and crashed the relay at its first status report)', () => {
    expect(fromFile('replayWindow:\n  kind: size')).toThrow(/replayWindow.*expected a duration such as 6h or 90m, or a WAL size such as 2GiB/);
    expect(fromFile('replayWindow: 5')).toThrow(/replayWindow.*expected a duration such as 6h/);
  });
});
