/**
 * sql/*.sql are what operators paste into migrations and init scripts: each must be safe to run again (a migration
 * tool retried, a Compose init directory reused, an operator who is not sure it ran). PostgreSQL has no
 * CREATE PUBLICATION IF NOT EXISTS, so a top-level CREATE of a publication (or role) fails the second time.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const scripts = readdirSync(join(root, 'sql')).filter((f) => f.endsWith('.sql'));

/** The statements outside DO blocks and comments: what runs unguarded at the top level. */
function topLevel(sql: string): string {
  return sql
    .replace(/--[^\n]*/g, '')
    .replace(/DO\s+\$\$[\s\S]*?\$\$/gi, '')
    .replace(/\$\$[\s\S]*?\$\$/g, '');
}

describe('sql/*.sql', () => {
  it.each(scripts)('%s creates nothing that fails when the script is run again', (file) => {
    const sql = topLevel(readFileSync(join(root, 'sql', file), 'utf8'));
    const creates = [...sql.matchAll(/\bCREATE\s+(?!OR\s+REPLACE\b)(\w+)\s+(?!IF\s+NOT\s+EXISTS\b)/gi)].map((m) => m[0].trim());
    expect(creates, `${file}: guard these (IF NOT EXISTS, OR REPLACE, or a DO block that checks the catalog)`).toEqual([]);
  });
});
