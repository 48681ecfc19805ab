import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { COMMAND_SETTINGS, type CommandName } from '../../src/cli/command-settings.js';
import { configCommand } from '../../src/cli/commands/config.js';
import { healthCommand } from '../../src/cli/commands/health.js';
import { publicationCommand } from '../../src/cli/commands/publication.js';
import { replayCommand } from '../../src/cli/commands/replay.js';
import { republishCommand } from '../../src/cli/commands/republish.js';
import { runCommand } from '../../src/cli/commands/run.js';
import { setupCommand } from '../../src/cli/commands/setup.js';
import { slotCommand } from '../../src/cli/commands/slot.js';
import { statusCommand } from '../../src/cli/commands/status.js';
import { slotRows } from '../../src/cli/commands/output.js';
import type { SlotStatus } from '../../src/ops/slots.js';
import { SETTINGS } from '../../src/config/settings.js';
import { repoRoot } from '../../stack/paths.js';
import { runCliSync } from '../support/cli.js';

const TOP = [runCommand(), replayCommand(), republishCommand(), setupCommand(), slotCommand(), publicationCommand(), statusCommand(), configCommand(), healthCommand()];

/** What `outbox-relay <name> --help` prints, from the same command objects main.ts registers. */
function help(name: CommandName): string {
  const [first, second] = name.split(' ') as [string, string | undefined];
  let command: Command = TOP.find((c) => c.name() === first)!;
  if (second) command = command.commands.find((c) => c.name() === second)!;
  return command.helpInformation();
}

/** The setting flags a help text offers. */
function settingFlags(text: string): string[] {
  return SETTINGS.filter((s) => new RegExp(`^\\s+${s.flag} `, 'm').test(text)).map((s) => s.flag);
}

describe('what a start loads', () => {
  it("leaves kafkajs, yaml and node's undici unloaded until a kafkajs client, a YAML config file or a fetch needs them (undici: Node 22+)", () => {
    // `--help` loads every command's modules, the relay's included: the whole static import graph.
    const result = spawnSync(process.execPath, ['--require', join(repoRoot, 'test/support/loaded-packages.cjs'), '--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), '--help'], { cwd: repoRoot, encoding: 'utf8' });
    expect(result.status).toBe(0);
    const packages = JSON.parse(/^loaded-packages (.*)$/m.exec(result.stderr)![1]!) as string[];
    // The hook sees the packages a start does need.
    expect(packages).toEqual(expect.arrayContaining(['pg', 'pino', 'prom-client', 'commander']));
    expect(packages).not.toContain('kafkajs');
    expect(packages).not.toContain('yaml');
    // On Node 22 and later an ES import of node:http would load it (src/http/server.ts); the Node-LTS run of this
    // test checks that. On Node 20, pg's check for Cloudflare reads `navigator`, which loads it anyway.
    if (Number(process.versions.node.split('.')[0]) >= 22) expect(packages).not.toContain('node:undici');
  });
});

describe('--help of each command', () => {
  it('offers exactly the settings of the groups the command reads', () => {
    for (const name of Object.keys(COMMAND_SETTINGS) as CommandName[]) {
      const groups: readonly string[] = COMMAND_SETTINGS[name];
      expect(settingFlags(help(name)), name).toEqual(SETTINGS.filter((s) => groups.includes(s.group)).map((s) => s.flag));
    }
  });

  it("slot drop's help names the republish its consequence prints, with --publication, and offers the settings that command is printed from", () => {
    const text = help('slot drop');
    expect(text.replace(/\s+/g, ' ')).toContain('outbox-relay republish --since … --publication …');
    expect(settingFlags(text)).toEqual(expect.arrayContaining(['--publication', '--tables']));
  });

  it('slot create and publication drop name the republish they print, with --publication, and offer the settings that command is printed from', () => {
    for (const name of ['slot create', 'publication drop'] as const) {
      const text = help(name);
      expect(text.replace(/\s+/g, ' '), name).toContain('outbox-relay republish --since … --publication …');
      expect(settingFlags(text), name).toEqual(expect.arrayContaining(['--publication', '--table', '--tables']));
    }
  });

  it("config check's help names the tables section it prints with tables", () => {
    // Before: the help described the settings only; the section "tables as run reads them" came unannounced.
    expect(help('config check').replace(/\s+/g, ' ')).toContain('with tables, a second section, "tables as run reads them": each table\'s topic, columns, routes and filter');
  });

  it('leaves out what a command does not use and keeps what it does', () => {
    const cases: [CommandName, string[], string[]][] = [
      ['replay', ['--start-lsn', '--kafka-brokers', '--replay-window', '--delivery-guarantee', '--checkpoint-topic', '--topic'], ['--http-port', '--http-host', '--relay-url', '--heartbeat-interval', '--delivery-on-poison']],
      // The checkpoint topic: republish refuses a row whose topic it is. The publication: its row filter.
      ['republish', ['--kafka-brokers', '--topic', '--mapping-id', '--retry-max-duration', '--checkpoint-topic', '--publication'], ['--http-port', '--slot', '--start-lsn', '--replay-window', '--delivery-guarantee']],
      ['slot status', ['--postgres-url', '--slot'], ['--kafka-brokers', '--topic', '--http-port', '--relay-url', '--publication', '--log-level']],
      // The mapping: setup checks that every column it reads is published (before, its flags were left out).
      ['setup', ['--slot', '--publication', '--table', '--tables', '--topic', '--mapping-id', '--preset'], ['--kafka-brokers', '--http-port', '--delivery-guarantee']],
      ['publication show', ['--publication'], ['--slot', '--table', '--kafka-brokers']],
      ['status', ['--relay-url', '--kafka-brokers', '--checkpoint-topic', '--slot', '--http-port', '--http-host'], ['--delivery-max-in-flight-events', '--topic']],
      ['run', ['--http-port', '--heartbeat-interval', '--delivery-on-poison', '--start-lsn'], ['--relay-url']],
      // What locates /healthz, and nothing the probe would have to resolve besides.
      ['health', ['--http-port', '--http-host'], ['--relay-url', '--postgres-url', '--kafka-brokers', '--log-level']],
    ];
    for (const [name, present, absent] of cases) {
      const flags = settingFlags(help(name));
      for (const flag of present) expect(flags, `${name} --help offers ${flag}`).toContain(flag);
      for (const flag of absent) expect(flags, `${name} --help must not offer ${flag}`).not.toContain(flag);
    }
  });

  it('still accepts, hidden, the flags of settings a command does not read: one set of flags serves every command', () => {
    const command = TOP.find((c) => c.name() === 'slot')!.commands.find((c) => c.name() === 'list')!;
    command.parseOptions(['--slot', 'billing_relay', '--topic', 'events', '--http-port', '0']);
    expect(command.opts()).toMatchObject({ slot: 'billing_relay', topic: 'events', httpPort: '0' });
  });

  it('hides the former flag names', () => {
    for (const name of ['run', 'replay', 'config check'] as CommandName[]) {
      expect(help(name)).not.toMatch(/--from-lsn|--delivery </);
    }
  });

  it("status's help says what of /readyz it prints: a halted relay's halt, and a not-ready one's reason (code, fix, since)", () => {
    // Wrapped to the terminal's width: compared as one line.
    const text = help('status').replace(/\s+/g, ' ');
    expect(text).toContain("a halted relay's code, event, commit LSN and fix");
    expect(text).toContain("a not-ready one's reason, what it retries: code, fix and since when");
  });

  it('the CLI itself prints the same settings in its --help', () => {
    const result = runCliSync(['slot', 'status', '--help']);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain('Usage: outbox-relay slot status');
    expect(settingFlags(result.stdout)).toEqual(['--postgres-url', '--postgres-password-file', '--postgres-sslmode', '--postgres-ssl-ca-file', '--postgres-connect-timeout', '--postgres-statement-timeout', '--slot']);
  });

  // It named an `active_pid` that slot status never prints (the pid is in `active`; `activePid` in JSON) and left out
  // `held_by`, which the "Lag growing" runbook sends the on-call engineer to.
  it('slot status --help names the rows slot status prints, by the names it prints them under', () => {
    const slot: SlotStatus = {
      name: 'outbox_relay', slotType: 'logical', plugin: 'pgoutput', database: 'app', inCurrentDatabase: true, active: true, activePid: 4242,
      heldBy: 'outbox-relay relay-0/outbox_relay', confirmedFlushLsn: '0/1A2B3C8', restartLsn: '0/1A2B000', walStatus: 'lost',
      invalidationReason: 'wal_removed', safeWalSize: null, lagBytes: 1024, failover: true, synced: false,
    };
    const printed = slotRows(slot).map(([key]) => key).filter((key) => !['slot', 'type', 'database'].includes(key));
    const description = TOP.find((c) => c.name() === 'slot')!.commands.find((c) => c.name() === 'status')!.description();
    const words = new Set(description.match(/[a-z]+(?:_[a-z]+)*/g));
    const fieldNames = description.match(/\b[a-z]+(?:_[a-z]+)+\b/g) ?? [];
    expect(fieldNames.filter((name) => !printed.includes(name)), 'named in the help, never printed').toEqual([]);
    expect(printed.filter((key) => !words.has(key)), 'printed, not named in the help').toEqual([]);
  });

  // `help help` printed the help on stderr with "outbox-relay needs a command", exit 2.
  it.each([
    [['help', 'help'], 'Usage: outbox-relay [options] [command]\n'],
    [['slot', 'help', 'help'], 'Usage: outbox-relay slot [options] [command]\n'],
  ])('%j prints the help of the command above it, exit 0', (args, usage) => {
    const result = runCliSync(args);
    expect(result.stdout.startsWith(usage), result.stdout).toBe(true);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  // `help nosuch` said "outbox-relay needs a command", as if none had been named.
  it.each([
    [['help', 'nosuch'], /^outbox-relay: CONFIG_INVALID: unknown command 'nosuch' \(the commands are listed above\)\n  fix: see outbox-relay --help$/m],
    [['slot', 'help', 'nosuch'], /^outbox-relay: CONFIG_INVALID: unknown command 'nosuch' \(the commands are listed above\)\n  fix: see outbox-relay slot --help$/m],
    [['slot'], /^outbox-relay: CONFIG_INVALID: outbox-relay slot needs a command \(listed above\)$/m],
  ])('%j: the usage error names what is wrong, exit 2', (args, error) => {
    const result = runCliSync(args);
    expect(result.stderr).toMatch(error);
    expect(result.status).toBe(2);
  });
});
