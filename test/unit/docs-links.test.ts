import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { README_PATH } from '../../scripts/gen-config-docs.js';
import { repoRoot } from '../../stack/paths.js';

const DOCS = join(repoRoot, 'docs');
const DOCUMENTS = [README_PATH, ...readdirSync(DOCS).filter((f) => f.endsWith('.md')).map((f) => join(DOCS, f))];

/** The documents' prose: fenced code blocks and inline code hold examples, not links. */
function prose(text: string): string {
  return text.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const match of text.replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6} (.+)$/gm)) {
    const slug = match[1]!
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

function links(text: string): string[] {
  return [...prose(text).matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((target) => !/^[a-z]+:/i.test(target));
}

describe('documentation links', () => {
  it.each(DOCUMENTS.map((path) => [relative(repoRoot, path), path]))('every relative link and anchor in %s resolves', (_name, path) => {
    const text = readFileSync(path, 'utf8');
    const broken: string[] = [];
    for (const target of links(text)) {
      const [file, anchor] = target.split('#') as [string, string | undefined];
      const resolved = file ? join(dirname(path), file) : path;
      if (!existsSync(resolved)) broken.push(`${target}: no such file`);
      else if (anchor !== undefined && (!resolved.endsWith('.md') || statSync(resolved).isDirectory() || !anchors(readFileSync(resolved, 'utf8')).has(anchor))) {
        broken.push(`${target}: no heading with that anchor`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('README stays a front page (at most 12 KB) and links every document in docs/', () => {
    const readme = readFileSync(README_PATH, 'utf8');
    expect(Buffer.byteLength(readme)).toBeLessThanOrEqual(12 * 1024);
    const linked = new Set(links(readme).map((target) => target.split('#')[0]));
    for (const file of readdirSync(DOCS).filter((f) => f.endsWith('.md'))) expect(linked, file).toContain(`docs/${file}`);
  });

  it('docs/benchmarks.md holds one generated block, and no table row of it is copied outside (a hand edit once left a stale copy)', () => {
    const text = readFileSync(join(DOCS, 'benchmarks.md'), 'utf8');
    const begin = '<!-- bench:begin';
    const end = '<!-- bench:end -->';
    expect(text.split(begin).length - 1).toBe(1);
    expect(text.split(end).length - 1).toBe(1);
    const inside = text.slice(text.indexOf(begin), text.indexOf(end));
    const outside = text.slice(0, text.indexOf(begin)) + text.slice(text.indexOf(end));
    const rows = inside.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| ---'));
    expect(rows.length).toBeGreaterThan(10);
    expect(rows.filter((row) => outside.includes(row))).toEqual([]);
  });

  it('computes anchors as GitHub does', () => {
    expect([...anchors('# Poison event: skip it with `slot advance`\n## A\n## A\n')]).toEqual(['poison-event-skip-it-with-slot-advance', 'a', 'a-1']);
  });
});
