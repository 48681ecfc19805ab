import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { load, refusal } from '../support/config-load.js';

function configFile(name: string, text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'cfg-')), name);
  writeFileSync(file, text);
  return file;
}

describe('config: an unknown key is named without a value typed into it', () => {
  // Before: each key whole, "postgres.password hunter2" and the URL with its password on stderr and in the logs.
  it('cuts a key at its first whitespace, "=" or ":" (a line `saslPassword hunter2:`, a URL with credentials), says so, and suggests the setting', () => {
    const file = configFile('relay.yaml', 'postgres:\n  url=postgres://u:s3cret@db/app:\nkafka:\n  brokers: k:9092\n  saslPassword hunter2:\n  saslPasword: x\npostgres://relay:pa55@db/app: 1\n');
    const r = refusal(() => load({}, {}, file));
    expect(r.code).toBe('CONFIG_INVALID');
    for (const part of [
      '"kafka.saslPassword…" (cut at its first whitespace: the rest may be a value, and is not shown) (did you mean kafka.saslPassword?)',
      '"postgres.url…" (cut at its first \'=\': the rest may be a value, and is not shown) (did you mean postgres.url?)',
      '"postgres…" (cut at its first \':\'',
      '"kafka.saslPasword" (did you mean kafka.saslPassword?)',
    ]) {
      expect(r.message).toContain(part);
    }
    expect(r.hint).toContain('write each setting as "key: value"');
    for (const secret of ['hunter2', 's3cret', 'pa55']) expect(`${r.message} ${r.hint}`).not.toContain(secret);
  });

  it('a JSON file’s key the same way', () => {
    const file = configFile('relay.json', JSON.stringify({ kafka: { brokers: 'k:9092', 'saslPassword\thunter2': 1 } }));
    const r = refusal(() => load({}, {}, file));
    expect(r.message).toContain('"kafka.saslPassword…" (cut at its first whitespace');
    expect(r.message).not.toContain('hunter2');
  });
});
