import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SCRAM_ROLE } from '../../stack/index.js';
import { formatLsn } from '../../src/lsn.js';
import { runCli, type CliResult } from '../support/cli.js';
import { useDatabase } from '../support/database.js';
import { setupOutbox, slotConfirmedLsn, type OutboxSetup } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { stack } from '../support/services.js';

/** Where the credentials come from: flags before the command's own, and the environment. */
interface Credentials {
  name: string;
  args: string[];
  env: Record<string, string>;
}

/** A credential source with an outbox of its own. */
interface Variant {
  credentials: Credentials;
  setup: OutboxSetup;
  source: string[];
}

function secretFile(content: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'relay-pgpass-')), 'password');
  writeFileSync(path, `${content}\n`);
  return path;
}

/** The database's URL as the scram-sha-256 role, with `password` (raw; percent-encoded here) or none. */
function roleUrl(dbUrl: string, password?: string): string {
  const url = new URL(dbUrl);
  url.username = SCRAM_ROLE.user;
  url.password = password === undefined ? '' : encodeURIComponent(password);
  return url.toString();
}

function credentialSources(dbUrl: string): Credentials[] {
  const file = secretFile(SCRAM_ROLE.password);
  return [
    { name: 'password file, URL without password', args: ['--postgres-url', roleUrl(dbUrl), '--postgres-password-file', file], env: {} },
    { name: 'password file over a wrong URL password', args: ['--postgres-url', roleUrl(dbUrl, 'wrong-password'), '--postgres-password-file', file], env: {} },
    { name: 'password in the URL', args: ['--postgres-url', roleUrl(dbUrl, SCRAM_ROLE.password)], env: {} },
    { name: 'PGPASSWORD', args: ['--postgres-url', roleUrl(dbUrl)], env: { PGPASSWORD: SCRAM_ROLE.password } },
    { name: 'DATABASE_URL', args: [], env: { DATABASE_URL: roleUrl(dbUrl, SCRAM_ROLE.password) } },
  ];
}

function expectConnected(what: string, result: CliResult): void {
  expect(`${result.stdout}\n${result.stderr}`, what).not.toMatch(/PG_CONNECT_FAILED|password authentication failed|password must be a string/);
}

// The stack's own PostgreSQL has the scram-sha-256 role; an external server may not.
describe.skipIf(!stack().owned.postgres)('ops: PostgreSQL passwords under scram-sha-256, for every command that connects', () => {
  const db = useDatabase('pgpass');

  it('a wrong password is refused (the server really checks it)', async () => {
    const result = await runCli(['slot', 'list', '--postgres-url', roleUrl(db().url, 'wrong-password')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('password authentication failed');
  });

  // Every command reads its password the same way (config/relay-config.ts puts postgres.passwordFile into the URL;
  // pg reads PGPASSWORD) and connects through one of two paths: ops/connection.ts (setup, slot, publication, status,
  // republish) or the replication stream with its side connections (replay, run). So every command with a password
  // file over a wrong URL password (the file must win), and every other source through both paths (slot status,
  // replay): 15 processes where every command with every source took 35, the suite's second-longest test (100 s on a
  // slow host), for no path more.
  it('password file over a wrong URL password: setup, slot, publication, status, republish, replay and run authenticate; every other source (a password file alone, a password in the URL, PGPASSWORD, DATABASE_URL): slot status and replay', async () => {
    const brokers = stack().brokers.join(',');
    // One after the other: kafkajs' admin trips over topics created side by side ("does not host this topic-partition").
    const variants: Variant[] = [];
    for (const credentials of credentialSources(db().url)) {
      const setup = await setupOutbox(db());
      variants.push({ credentials, setup, source: ['--slot', setup.slot, '--publication', setup.publication, '--topic', setup.topic] });
    }
    const one = async (credentials: Credentials, args: string[]) => {
      const result = await runCli(args, credentials.env);
      expectConnected(`${args[0]} ${args[1]} with ${credentials.name}`, result);
      return result;
    };
    const everyCommand = variants.find((v) => v.credentials.name === 'password file over a wrong URL password')!;
    const replay = async ({ credentials, setup, source }: Variant) => {
      const from = formatLsn(await slotConfirmedLsn(db(), setup.slot));
      const result = await one(credentials, ['replay', ...credentials.args, ...source, '--kafka-brokers', brokers, '--start-lsn', from, '--status-interval', '200ms']);
      expect(result.code, `${credentials.name}\n${result.stdout}\n${result.stderr}`).toBe(0);
    };
    // The one-shot commands one at a time: several CLI processes at once starve a shared 2-core machine.
    {
      const { credentials, setup, source } = everyCommand;
      expect((await one(credentials, ['setup', '--dry-run', ...credentials.args, ...source])).code).toBe(0);
      expect((await one(credentials, ['publication', 'show', ...credentials.args, ...source])).code).toBe(0);
      const status = await one(credentials, ['status', '--json', ...credentials.args, ...source, '--relay-url', 'http://127.0.0.1:9']);
      expect((JSON.parse(status.stdout) as { slot: { name: string } }).slot.name).toBe(setup.slot);
      expect((await one(credentials, ['republish', '--dry-run', '--ids', '00000000-0000-0000-0000-000000000000', ...credentials.args, ...source])).code).toBe(0);
      const relay = startRelay(['run', ...credentials.args, ...source, '--kafka-brokers', brokers], { ...credentials.env, PGPASSWORD: credentials.env.PGPASSWORD ?? '' });
      await relay.waitForMessage('streaming from PostgreSQL');
      relay.signal('SIGTERM');
      expect(await relay.exited, relay.dump()).toBe(0);
    }
    for (const variant of variants) {
      expect((await one(variant.credentials, ['slot', 'status', ...variant.credentials.args, ...variant.source])).code).toBe(0);
      await replay(variant);
    }
  }, 600_000);
});
