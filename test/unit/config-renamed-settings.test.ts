import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { addSettingOptions, flagValues } from '../../src/cli/options.js';
import { UnderFormerName } from '../../src/config/load.js';
import { loadConfig } from '../../src/config/relay-config.js';
import { parseLsn } from '../../src/lsn.js';
import { refusal } from '../support/config-load.js';
import { runCliSync } from '../support/cli.js';

/** The flags `args` give the replay command, as its action sees them, with the warnings printed. */
function parseFlags(args: string[]): { values: Record<string, unknown>; warnings: string[] } {
  const command = addSettingOptions(new Command('replay').exitOverride(), 'replay');
  command.parse(args, { from: 'user' });
  const warnings: string[] = [];
  return { values: flagValues(command.opts(), (line) => warnings.push(line)), warnings };
}

function load(env: Record<string, string>, flags: Record<string, unknown> = {}) {
  const warnings: string[] = [];
  const config = loadConfig({ flags, env, warn: (line) => warnings.push(line) });
  return { config, warnings };
}

describe('renamed settings', () => {
  it('accept the former flag with one warning naming the new one', () => {
    const { values, warnings } = parseFlags(['--from-lsn', '0/16B3748', '--delivery', 'exactly-once']);
    expect(values).toEqual({ startLsn: new UnderFormerName('--from-lsn', '0/16B3748'), 'delivery.guarantee': new UnderFormerName('--delivery', 'exactly-once') });
    const config = loadConfig({ flags: values, env: {} });
    expect([config.startLsn, config.values['delivery.guarantee'], config.origins.startLsn]).toEqual([parseLsn('0/16B3748'), 'exactly-once', 'flag']);
    expect(config.formerNames).toEqual({ startLsn: '--from-lsn', 'delivery.guarantee': '--delivery' });
    expect(warnings).toEqual([
      'warning: --from-lsn is deprecated, use --start-lsn (setting startLsn)',
      'warning: --delivery is deprecated, use --delivery-guarantee (setting delivery.guarantee)',
    ]);
  });

  it('take the new flag without a warning, and let it win over the former one', () => {
    expect(parseFlags(['--start-lsn', '0/1', '--delivery-guarantee', 'at-most-once'])).toEqual({ values: { startLsn: '0/1', 'delivery.guarantee': 'at-most-once' }, warnings: [] });
    const both = parseFlags(['--from-lsn', '0/1', '--start-lsn', '0/2']);
    expect(both.values).toEqual({ startLsn: '0/2' });
    expect(both.warnings).toEqual(['warning: --from-lsn is deprecated, use --start-lsn (setting startLsn); --start-lsn is also given and wins']);
  });

  it('accept the former environment variable with one warning naming the new one', () => {
    const { config, warnings } = load({ OUTBOX_RELAY_FROM_LSN: '0/16B3748', OUTBOX_RELAY_DELIVERY: 'at-most-once' });
    expect(config.startLsn).toBe(parseLsn('0/16B3748'));
    expect(config.origins.startLsn).toBe('env');
    expect(config.values['delivery.guarantee']).toBe('at-most-once');
    expect(warnings).toEqual([
      'warning: OUTBOX_RELAY_FROM_LSN is deprecated, use OUTBOX_RELAY_START_LSN (setting startLsn)',
      'warning: OUTBOX_RELAY_DELIVERY is deprecated, use OUTBOX_RELAY_DELIVERY_GUARANTEE (setting delivery.guarantee)',
    ]);
  });

  it('take the new environment variable without a warning, and let it win', () => {
    expect(load({ OUTBOX_RELAY_START_LSN: '0/2' })).toMatchObject({ config: { startLsn: parseLsn('0/2') }, warnings: [] });
    const both = load({ OUTBOX_RELAY_FROM_LSN: '0/1', OUTBOX_RELAY_START_LSN: '0/2' });
    expect(both.config.startLsn).toBe(parseLsn('0/2'));
    expect(both.warnings).toHaveLength(1);
  });

  // Named by the current name, which was not set: a search of the manifest for it found nothing.
  it('name the former flag or variable a bad value was given under, in the error and its fix', () => {
    const error = refusal(() => loadConfig({ flags: parseFlags(['--from-lsn', 'zz']).values, env: { OUTBOX_RELAY_DELIVERY: 'exactly-once-please' }, warn: () => undefined }));
    expect(error.message).toContain('invalid flag --from-lsn: "zz"');
    expect(error.message).toContain('invalid environment variable OUTBOX_RELAY_DELIVERY: "exactly-once-please"');
    expect(error.hint).toBe('correct the flag --from-lsn (setting startLsn); correct the environment variable OUTBOX_RELAY_DELIVERY (setting delivery.guarantee)');
    expect(`${error.message} ${error.hint}`).not.toMatch(/--start-lsn|OUTBOX_RELAY_DELIVERY_GUARANTEE/);
  });
});

describe('config check: the source of each value', () => {
  const check = (args: string[], env: Record<string, string>) => {
    const result = runCliSync(['config', 'check', '--kafka-brokers', 'k:9092', '--json', ...args], env);
    expect(result.status, result.stderr).toBe(0);
    return Object.fromEntries((JSON.parse(result.stdout) as { settings: { key: string; value: unknown; source: string }[] }).settings.map((s) => [s.key, s]));
  };

  it('names the former flag or variable a value was given under', () => {
    expect(check(['--delivery', 'at-most-once'], {})['delivery.guarantee']).toEqual({ key: 'delivery.guarantee', value: 'at-most-once', source: 'flag --delivery' });
    expect(check([], { OUTBOX_RELAY_DELIVERY: 'at-most-once' })['delivery.guarantee']!.source).toBe('env OUTBOX_RELAY_DELIVERY');
  });

  // It showed the position as in effect, from the environment, while run ignores it there (withoutPersistentStart).
  it('shows a start position from the environment as run takes it: unset, with where it was and that run ignores it', () => {
    expect(check([], { OUTBOX_RELAY_START_LSN: '0/16B3748' }).startLsn).toEqual({ key: 'startLsn', value: null, source: 'env OUTBOX_RELAY_START_LSN (ignored: run takes a start position only as --start-lsn)' });
    expect(check([], { OUTBOX_RELAY_FROM_LSN: '0/16B3748' }).startLsn!.source).toBe('env OUTBOX_RELAY_FROM_LSN (ignored: run takes a start position only as --start-lsn)');
    expect(check(['--start-lsn', '0/16B3748'], {}).startLsn).toEqual({ key: 'startLsn', value: '0/16B3748', source: 'flag --start-lsn' });
  });
});
