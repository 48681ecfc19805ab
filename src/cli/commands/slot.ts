import type { Command } from 'commander';
import { republishScope } from '../../source/republish-command.js';
import type { Lsn } from '../../lsn.js';
import { advanceSlot, describeSkip } from '../../ops/slot-advance.js';
import { dropConsequence, dropSlot } from '../../ops/slot-drop.js';
import { createSlot, listSlots, requireSlot } from '../../ops/slots.js';
import { checkedWithSettings, lsnValue } from '../options.js';
import { groupCommand, opsCommand } from './ops-command.js';
import { FAILOVER_SLOT_OPTION, bytes, failoverCell, keyValues, slotRows, table, walStatusCell } from './output.js';

const create = () =>
  opsCommand(
    {
      settings: 'slot create',
      changes: true,
      name: 'create',
      description:
        'Create the logical replication slot (pgoutput) the relay streams from, after its publication (refused while the publication does not exist); "already exists" is not an error, but an existing slot PostgreSQL invalidated is refused (PG_SLOT_LOST: its fix prints the outbox-relay republish --since … --publication … that re-sends the gap, with the publication of its settings and, when the tables setting lists the tables, --tables). --failover-slot (PostgreSQL 17+) makes it a failover slot, which standbys sync.',
      examples: ['outbox-relay slot create --postgres-url postgres://admin@db/app', 'outbox-relay slot create --slot billing_relay', 'outbox-relay slot create --failover-slot    # PostgreSQL 17+: survives a failover'],
    },
    async ({ client, config, opts }) => {
      const { created, slot } = await createSlot(client, config.slot, republishScope(config), opts.failoverSlot === true);
      const failover = slot.failover ? ' (failover slot)' : '';
      return { data: { created, slot }, text: `slot "${slot.name}"${failover}: ${created ? `created at ${slot.confirmedFlushLsn}` : 'already exists'}` };
    },
  ).option('--failover-slot', FAILOVER_SLOT_OPTION);

const drop = () =>
  opsCommand(
    {
      settings: 'slot drop',
      changes: true,
      name: 'drop',
      description:
        'Drop the replication slot (its position and the WAL it pins are released; events it had not delivered and those committed until it is re-created are not streamed: it prints the outbox-relay republish --since … --publication … that recovers them, from when, with the publication of its settings and, when the tables setting lists the tables, --tables). An active slot is only dropped with --force (else exit 6).',
      examples: ['outbox-relay slot drop --slot outbox_relay', 'outbox-relay slot drop --force    # terminates the streaming backend first'],
    },
    async ({ client, config, opts }) => {
      const { dropped, terminatedPids, droppedAt, confirmedLsn = null, lagBytes = null, failover = null, openTransactions } = await dropSlot(client, config.slot, republishScope(config), opts.force === true);
      const terminated = terminatedPids.length ? ` (terminated backend pid ${terminatedPids.join(', ')})` : '';
      const consequence = droppedAt ? dropConsequence({ confirmedFlushLsn: confirmedLsn, lagBytes, failover }, { slot: config.slot, ...republishScope(config) }, new Date(droppedAt), openTransactions) : undefined;
      const text = `slot "${config.slot}": ${dropped ? 'dropped' : 'does not exist, nothing to drop'}${terminated}${consequence ? `\n${consequence}` : ''}`;
      return { data: { dropped, terminatedPids, ...(droppedAt ? { droppedAt, confirmedLsn, lagBytes, consequence } : {}) }, text };
    },
  ).option('--force', 'terminate the backend using the slot (pg_terminate_backend), then drop it');

const list = () =>
  opsCommand(
    {
      settings: 'slot list',
      name: 'list',
      description: 'List every replication slot of the server, with its state and lag.',
      examples: ['outbox-relay slot list', "outbox-relay slot list --json | jq '.[] | select(.active | not)'"],
    },
    async ({ client }) => {
      const slots = await listSlots(client);
      // FAILOVER only where the server has failover slots (PostgreSQL 17+): before, a column of dashes.
      const failover = slots.some((s) => s.failover !== null);
      const rows = slots.map((s) => [s.name, s.slotType, s.plugin, s.database, s.active ? `yes (${s.activePid})` : 'no', s.confirmedFlushLsn, walStatusCell(s), bytes(s.lagBytes), ...(failover ? [failoverCell(s)] : [])]);
      const text = slots.length ? table(['SLOT', 'TYPE', 'PLUGIN', 'DATABASE', 'ACTIVE', 'CONFIRMED', 'WAL_STATUS', 'LAG', ...(failover ? ['FAILOVER'] : [])], rows) : 'no replication slots';
      return { data: slots, text };
    },
  );

const status = () =>
  opsCommand(
    {
      settings: 'slot status',
      name: 'status',
      description:
        "Show the relay's slot: active (with the pid holding it), held_by (who holds it: a relay names its host and slot there), confirmed_flush_lsn, restart_lsn, wal_status (and invalidation_reason when lost), safe_wal_size, lag behind the current WAL position (a standby's replay position on a standby) and, PostgreSQL 17+, failover and synced (run on a standby: whether its copy is kept in sync).",
      examples: ['outbox-relay slot status', 'outbox-relay slot status --slot billing_relay --json'],
    },
    async ({ client, config }) => {
      const slot = await requireSlot(client, { slot: config.slot, ...republishScope(config) });
      return { data: { ...slot }, text: keyValues(slotRows(slot)) };
    },
  );

const advance = () =>
  opsCommand(
    {
      settings: 'slot advance',
      changes: true,
      name: 'advance',
      description:
        'Move the slot forward to <lsn> (pg_replication_slot_advance) to skip events that cannot be delivered. Without --yes-skip-events it only says what would be skipped (exit 6).',
      examples: [
        'outbox-relay slot advance 0/1A2B3C9                     # says what would be skipped, exits 6',
        'outbox-relay slot advance 0/1A2B3C9 --yes-skip-events   # skips it (stop the relay first)',
      ],
    },
    async ({ client, config, opts, args }) => {
      const result = await advanceSlot(client, { slot: config.slot, republish: republishScope(config), tables: config.tables, messagePrefixes: config.messages?.prefixes ?? [], to: args[0] as Lsn, confirmed: opts.yesSkipEvents === true });
      const text =
        result.walBytes === 0 ? `slot "${result.slot}" is already at ${result.to}: nothing skipped` : `${describeSkip(result)}\nslot "${result.slot}" advanced: confirmed_flush_lsn is now ${result.confirmedFlushLsn}`;
      return { data: { ...result }, text };
    },
  )
    .argument('<lsn>', 'new confirmed position: transactions whose commit record starts before it are skipped', checkedWithSettings((value) => lsnValue('slot advance <lsn>', value)))
    .option('--yes-skip-events', 'confirm that the events in the range are never relayed');

export function slotCommand(): Command {
  return groupCommand('slot', 'Manage the logical replication slot: create, drop, list, status, advance.', ['outbox-relay slot status', 'outbox-relay slot advance --help'])
    .addCommand(create())
    .addCommand(drop())
    .addCommand(list())
    .addCommand(status())
    .addCommand(advance());
}
