import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { CONFIG_DOC_PATH, CONFIG_SECTION, EXAMPLE_PATH, configReference, exampleConfig, replaceSection, sectionOf } from '../../scripts/gen-config-docs.js';
import { ConfigProblems, resolveSettings } from '../../src/config/load.js';
import { loadConfig } from '../../src/config/relay-config.js';
import { SETTINGS } from '../../src/config/settings.js';
import { silentLogger } from '../../src/logger.js';
import { createSink } from '../../src/sink/create-sink.js';
import { batchLimits } from '../../src/sink/delivery-engine.js';

/** The example with every setting enabled: a `#` directly followed by YAML (not by `# `) is removed. */
function uncommented(text: string): string {
  return text
    .split('\n')
    .map((line) => (/^#(?! \S)/.test(line) ? line.slice(1) : line))
    .join('\n');
}

/** Setting keys of a parsed config file; a setting's value may itself be a mapping (kafka.producer). */
function flatKeys(value: unknown, prefix = ''): string[] {
  if (SETTINGS.some((s) => s.key === prefix) || value === null || typeof value !== 'object' || Array.isArray(value)) return [prefix];
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => flatKeys(v, prefix ? `${prefix}.${k}` : k));
}

describe('generated configuration docs', () => {
  it('docs/configuration.md is what npm run docs:config generates from SETTINGS', () => {
    const reference = readFileSync(CONFIG_DOC_PATH, 'utf8');
    expect(sectionOf(reference, CONFIG_SECTION), 'docs/configuration.md is out of date: run npm run docs:config').toBe(configReference());
  });

  it('lists every setting with its flag, environment variable and default', () => {
    const table = configReference();
    for (const setting of SETTINGS) {
      const row = table.split('\n').find((line) => line.startsWith(`| \`${setting.key}\` |`));
      expect(row, setting.key).toBeDefined();
      expect(row).toContain(`\`${setting.flag}\``);
      expect(row).toContain(`\`${setting.env}\``);
    }
  });

  it('config/outbox-relay.example.yaml is current and inert as shipped', () => {
    const example = readFileSync(EXAMPLE_PATH, 'utf8');
    expect(example, 'example config is out of date: run npm run docs:config').toBe(exampleConfig());
    expect(YAML.parse(example)).toBeNull();
  });

  it('the example, every line enabled, names each setting once and every value passes validation', () => {
    const parsed: unknown = YAML.parse(uncommented(exampleConfig()));
    const keys = flatKeys(parsed);
    expect([...keys].sort()).toEqual(SETTINGS.map((s) => s.key).sort());
    const flat = Object.fromEntries(keys.map((k) => [k, k.split('.').reduce<unknown>((o, part) => (o as Record<string, unknown>)[part], parsed)]));
    const problems = new ConfigProblems();
    const resolved = resolveSettings({ file: flat, fileName: 'example', env: {}, flags: {} }, problems);
    problems.throwIfAny();
    expect(Object.keys(resolved.values).sort()).toEqual(SETTINGS.map((s) => s.key).sort());
    for (const setting of SETTINGS) {
      if (setting.default !== undefined) expect(resolved.values[setting.key], setting.key).toEqual(setting.default);
    }
  });

  it('replaces only the named section of a document', () => {
    const doc = 'a\n<!-- section:x:start -->\nold\n<!-- section:x:end -->\n<!-- section:y:start -->\nkeep\n<!-- section:y:end -->\n';
    const replaced = replaceSection(doc, 'x', 'new');
    expect(sectionOf(replaced, 'x')).toBe('new');
    expect(sectionOf(replaced, 'y')).toBe('keep');
    expect(replaced.startsWith('a\n')).toBe(true);
    expect(() => replaceSection(doc, 'z', 'new')).toThrow(/lacks the markers/);
  });
});

describe('the batch settings’ docs', () => {
  it('give the batch limits the delivery engine derives from the default window with librdkafka', async () => {
    const config = loadConfig({ env: {}, flags: { 'kafka.brokers': '127.0.0.1:9092' }, required: ['kafka.brokers'] });
    expect(config.kafka.client).toBe('rdkafka');
    const sink = await createSink(config.kafka, silentLogger());
    try {
      const depth = sink.pipelineDepth!;
      const limits = batchLimits(config.delivery, depth);
      const doc = (key: string) => SETTINGS.find((s) => s.key === key)!.doc;
      expect(doc('delivery.batchMaxEvents')).toContain(`(${depth} with kafka.client rdkafka and at-least-once, otherwise 1)`);
      expect(doc('delivery.batchMaxEvents')).toContain(`${limits.events} with rdkafka and the default window`);
      expect(doc('delivery.batchMaxBytes')).toContain(`${limits.bytes / 1024}KiB with rdkafka and the default window`);
    } finally {
      await sink.close();
    }
  });
});
