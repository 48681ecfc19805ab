import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { addSettingOptions, flagValues } from '../../src/cli/options.js';
import { loadConfig } from '../../src/config/relay-config.js';
import { parseLsn } from '../../src/lsn.js';

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
    expect(values).toEqual({ startLsn: '0/16B3748', 'delivery.guarantee': 'exactly-once' });
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
});
