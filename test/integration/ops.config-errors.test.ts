import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../stack/ports.js';
import { SETTINGS } from '../../src/config/settings.js';
import { runCli, runCliJson } from '../support/cli.js';
import { killAllRelays, startRelay } from '../support/relay-process.js';

/** The CLI exits before connecting anywhere, so an unreachable broker address is fine. */
const BROKERS = ['--kafka-brokers', '127.0.0.1:9'];

function configFile(name: string, text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'relay-config-')), name);
  writeFileSync(path, text);
  return path;
}

async function runToExit(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const relay = startRelay(['run', ...args], env);
  const code = await relay.exited;
  return { code, stderr: relay.stderr.join('\n'), stdout: relay.logs.map((l) => JSON.stringify(l)).join('\n') };
}

describe('ops: configuration errors exit 2 and name the key and where the value came from', () => {
  afterEach(killAllRelays);

  it('a bad flag value', async () => {
    const result = await runToExit([...BROKERS, '--delivery-batch-max-events', 'lots']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('invalid flag --delivery-batch-max-events: "lots"');
    expect(result.stderr).toContain('setting delivery.batchMaxEvents');
    expect(result.stderr).toContain('a whole number from 1 to 1000000');
    expect(result.stdout).toBe('');
  });

  it('every problem at once: a bad flag, a bad environment variable and a missing setting in one run', async () => {
    const result = await runToExit(['--delivery-batch-max-events', 'lots'], { OUTBOX_RELAY_DELIVERY_BATCH_MAX_BYTES: 'huge' });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('3 settings are invalid');
    expect(result.stderr).toContain('invalid flag --delivery-batch-max-events: "lots"');
    expect(result.stderr).toContain('invalid environment variable OUTBOX_RELAY_DELIVERY_BATCH_MAX_BYTES: "huge"');
    expect(result.stderr).toContain('missing required setting kafka.brokers');
  });

  it('a bad environment variable', async () => {
    const result = await runToExit(BROKERS, { OUTBOX_RELAY_DELIVERY_BATCH_MAX_BYTES: 'huge' });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('invalid environment variable OUTBOX_RELAY_DELIVERY_BATCH_MAX_BYTES: "huge"');
    expect(result.stderr).toContain('setting delivery.batchMaxBytes');
    expect(result.stderr).toContain('a size such as 900KiB');
  });

  it('a bad value in the config file', async () => {
    const file = configFile('relay.yaml', 'kafka:\n  brokers: [127.0.0.1:9]\n  compression: brotli\n');
    const result = await runToExit(['--config', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`invalid key "kafka.compression" in ${file}: "brotli"`);
    expect(result.stderr).toContain('one of: none, gzip, snappy, lz4, zstd');
  });

  it('the source that wins is the one named: a flag overrides a bad file value', async () => {
    const file = configFile('relay.json', JSON.stringify({ kafka: { brokers: ['127.0.0.1:9'] }, slot: 'bad-slot!' }));
    const result = await runToExit(['--config', file, '--slot', 'also bad!']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('invalid flag --slot: "also bad!"');
    expect(result.stderr).not.toContain('bad-slot!');
  });

  it('an unknown key in the config file', async () => {
    const file = configFile('relay.yaml', 'kafka:\n  brokers: [127.0.0.1:9]\n  brokerz: [127.0.0.1:9]\n');
    const result = await runToExit(['--config', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${file}: unknown setting "kafka.brokerz"`);
  });

  it('a missing required setting and an unknown flag: each one error with its code and fix', async () => {
    const missing = await runToExit([]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^outbox-relay: CONFIG_INVALID: missing required setting kafka\.brokers\n {2}fix: pass --kafka-brokers/);
    const unknown = await runToExit([...BROKERS, '--kafka-brokerz', 'x']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^outbox-relay: CONFIG_INVALID: unknown option '--kafka-brokerz' \(Did you mean --kafka-brokers\?\)\n {2}fix: see outbox-relay run --help\n?$/);
  });

  it('an HTTP port already in use', async () => {
    const port = await freePort();
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      const relay = startRelay(['run', ...BROKERS, '--http-port', String(port), '--http-host', '127.0.0.1']);
      expect(await relay.exited).toBe(2);
      const line = relay.logs.find((l) => l.msg === 'cannot start the HTTP server');
      expect(line, relay.dump()).toMatchObject({ level: 'error', code: 'CONFIG_INVALID' });
      expect(String(line!.err)).toContain(`127.0.0.1:${port}`);
      expect(String(line!.fix)).toContain('http.port');
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it('config check prints every effective value with its source, secrets masked; invalid settings exit 2, all named', async () => {
    const file = configFile('relay.yaml', 'kafka:\n  brokers: [kafka-1:9092]\n  saslMechanism: plain\n  saslUsername: relay\n  saslPassword: file-secret\ntopic: from-file\n');
    const checked = await runCliJson<{ valid: boolean; settings: { key: string; value: unknown; source: string }[] }>(
      ['config', 'check', '--config', file, '--slot', 'flag_slot', '--postgres-url', 'postgres://relay:url-secret@db/app'],
      { OUTBOX_RELAY_TOPIC: 'from-env' },
    );
    expect(checked.code, checked.stderr).toBe(0);
    const byKey = Object.fromEntries(checked.json.settings.map((s) => [s.key, s]));
    expect(byKey.slot).toEqual({ key: 'slot', value: 'flag_slot', source: 'flag --slot' });
    expect(byKey.topic).toEqual({ key: 'topic', value: 'from-env', source: 'env OUTBOX_RELAY_TOPIC' });
    expect(byKey['kafka.brokers']).toEqual({ key: 'kafka.brokers', value: ['kafka-1:9092'], source: `file ${file}` });
    expect(byKey.publication!.source).toBe('default');
    expect(byKey['kafka.saslPassword']!.value).toBe('***');
    expect(byKey['postgres.url']!.value).toBe('postgres://relay:***@db/app');
    expect(checked.stdout).not.toMatch(/file-secret|url-secret/);
    // Every setting is listed, an unset one too; JSON keeps the units values are held in (ms, bytes).
    expect(checked.json.settings.map((s) => s.key)).toEqual(SETTINGS.map((s) => s.key));
    expect(byKey['kafka.clientRack']).toEqual({ key: 'kafka.clientRack', value: null, source: 'unset' });
    expect(byKey['retry.maxDuration']!.value).toBe(1_800_000);
    const text = await runCli(['config', 'check', '--config', file, '--replay-window', '2GiB']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^topic +from-file +file /m);
    // The text shows values as they are written: durations and sizes in their units, not ms and bytes.
    expect(text.stdout).toMatch(/^retry\.maxDuration +30m +default$/m);
    expect(text.stdout).toMatch(/^delivery\.maxInFlightBytes +2MiB +default$/m);
    expect(text.stdout).toMatch(/^replayWindow +2GiB +flag --replay-window$/m);
    expect(text.stdout).toMatch(/^kafka\.clientRack +- +unset$/m);
    expect(text.stdout).toMatch(/^delivery\.coalesce +- +unset \(default 0 \(rdkafka\), 1ms \(kafkajs\)\)$/m);

    const invalid = await runCli(['config', 'check', '--kafka-brokers', 'kafka-1:9092', '--delivery-batch-max-events', 'lots', '--slot', 'Bad Slot']);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain('2 settings are invalid');
    expect(invalid.stderr).toContain('invalid flag --slot');
    expect(invalid.stderr).toContain('invalid flag --delivery-batch-max-events');
  });
});
