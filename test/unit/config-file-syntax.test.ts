import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readLayers, ConfigProblems } from '../../src/config/load.js';
import { load, refusal } from '../support/config-load.js';
import { runCliSync } from '../support/cli.js';

const SECRET = 'hunter2';

function configFile(name: string, text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'cfg-syntax-')), name);
  writeFileSync(file, text);
  return file;
}

/**
 * Files that do not parse, each with the secret on the line at fault (or the one before, which yaml prints for a
 * tab), and the line, column and kind of problem the error names instead.
 */
const BROKEN: [string, string, string, RegExp][] = [
  ['bad indentation', 'relay.yaml', `kafka:\n  brokers: k:9092\n  saslUsername: relay\n saslPassword: ${SECRET}\n`, /line 4, column 1: bad indentation/],
  ['a tab indent', 'relay.yaml', `kafka:\n  brokers: k:9092\n  saslPassword: ${SECRET}\n\tsaslUsername: relay\n`, /line 4, column 1: a tab used as indentation/],
  ['an unresolved alias', 'relay.yaml', `kafka:\n  brokers: k:9092\n  saslPassword: *${SECRET}\n`, /line 3, column 17: unresolved alias/],
  ['malformed JSON', 'relay.json', `{"kafka": {"brokers": "k:9092",\n  "saslPassword": ${SECRET}}}`, /line 2, column 19: unexpected token/],
];

describe('config: a config file that does not parse is named by line and column, never its text (a secret on the line)', () => {
  it.each(BROKEN)('%s: the error names the file, line, column and problem, not the secret', (_what, name, text, where) => {
    const file = configFile(name, text);
    const r = refusal(() => load({}, {}, file));
    expect(r.code).toBe('CONFIG_INVALID');
    expect(`${r.message}\n${r.hint}`).not.toContain(SECRET);
    expect(r.message).toContain(file);
    expect(r.message).toMatch(where);
    expect(r.hint).toMatch(/at line \d+, column \d+/);
  });

  it.each(BROKEN)('%s: config check and run print neither the secret nor anything of the file on stdout or stderr', (_what, name, text, where) => {
    const file = configFile(name, text);
    for (const args of [['config', 'check', '--config', file], ['config', 'check', '--json', '--config', file], ['run', '--config', file]]) {
      const result = runCliSync(args);
      expect(result.stdout).not.toContain(SECRET);
      expect(result.stderr).not.toContain(SECRET);
      expect(result.status).toBe(2);
      expect(result.stdout + result.stderr).toMatch(where);
    }
  });
});

describe('config: a YAML !tag the parser reads past', () => {
  const text = `kafka:\n  brokers: k:9092\n  saslMechanism: plain\n  saslUsername: relay\n  saslPassword: !${SECRET} x\n`;

  it('is one warning line naming the line and column, without the tag (the value after the !)', () => {
    const lines: string[] = [];
    const problems = new ConfigProblems();
    readLayers({ flags: {}, env: {}, configFile: configFile('relay.yaml', text), warn: (line) => lines.push(line) }, problems);
    expect(lines.join('\n')).not.toContain(SECRET);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^warning: config file .*relay\.yaml: line 5, column 17: unresolved tag/);
  });

  it('config check writes neither the tag nor the line to stderr (it was a Node warning quoting the line)', () => {
    const result = runCliSync(['config', 'check', '--config', configFile('relay.yaml', text)]);
    expect(result.stdout + result.stderr).not.toContain(SECRET);
    expect(result.status).toBe(0);
    expect(result.stderr).toMatch(/line 5, column 17: unresolved tag/);
  });
});
