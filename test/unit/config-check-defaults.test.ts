import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_DOC_PATH } from '../../scripts/gen-config-docs.js';
import { SETTINGS } from '../../src/config/settings.js';
import { runCliSync } from '../support/cli.js';

const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('config check against help and docs/configuration.md', () => {
  it('prints every default value in the spelling that --help and docs/configuration.md give it', () => {
    const check = runCliSync(['config', 'check'], { OUTBOX_RELAY_KAFKA_BROKERS: 'k:9092' });
    expect(check.status, check.stderr).toBe(0);
    const help = runCliSync(['config', 'check', '--help']).stdout;
    const docs = readFileSync(CONFIG_DOC_PATH, 'utf8');
    const defaulted = SETTINGS.filter((s) => s.default !== undefined);
    const seen = defaulted.map((s) => ({
      key: s.key,
      check: new RegExp(`^${escaped(s.key)} +(\\S+) +default$`, 'm').exec(check.stdout)?.[1],
      help: new RegExp(`^ +${escaped(s.flag)} .*; default (.*)\\]$`, 'm').exec(help)?.[1],
      docs: new RegExp(`^\\| \`${escaped(s.key)}\` \\|[^|]*\\|[^|]*\\| \`(.*?)\` \\|`, 'm').exec(docs)?.[1],
    }));
    expect(seen.filter((s) => s.check === undefined).map((s) => s.key)).toEqual([]);
    expect(seen.filter((s) => s.check !== s.help || s.check !== s.docs)).toEqual([]);
  });
});
