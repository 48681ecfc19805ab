import type { Command } from 'commander';
import { republishScope } from '../../source/republish-command.js';
import { setup, type SetupReport } from '../../ops/setup.js';
import { opsCommand } from './ops-command.js';
import { FAILOVER_SLOT_OPTION, checksFailedError, checksText } from './output.js';
import { rowFilterOption } from './publication.js';

const RESULT_TEXT = { exists: 'already exists', created: 'created', planned: 'to create' } as const;

export function setupText(report: SetupReport): string {
  const lines = [checksText(report.checks)];
  // No steps: refused on a standby before anything was looked at.
  if (report.dryRun && report.steps.length > 0) {
    const sql = report.steps.filter((s) => s.result === 'planned').map((s) => s.sql);
    // A real run with a failed check creates nothing: 'would run' alone promised what it would refuse.
    const heading = report.ok ? 'dry run, would run:' : 'dry run, would run once the failed checks pass (a run now creates nothing):';
    lines.push('', sql.length ? heading : 'dry run: nothing to create', ...sql.map((s) => `  ${s}`));
  } else if (report.ok) {
    lines.push('', ...report.steps.map((s) => `${s.object} "${s.name}": ${RESULT_TEXT[s.result]}${s.result === 'created' ? `\n  ${s.sql}` : ''}`));
  }
  return lines.join('\n');
}

export function setupCommand(): Command {
  return opsCommand(
    {
      settings: 'setup',
      name: 'setup',
      description: 'Check the server and the role, then create the insert-only publication and the pgoutput slot if missing. Safe to run again.',
      examples: [
        'outbox-relay setup --postgres-url postgres://admin@db/app',
        'outbox-relay setup --dry-run              # checks, and prints the SQL instead of running it',
        `outbox-relay setup --row-filter "aggregate_type <> 'internal'" --json`,
        'outbox-relay setup --failover-slot           # PostgreSQL 17+: the slot survives a failover to a standby that syncs it',
      ],
    },
    async ({ client, config, opts }) => {
      const report = await setup(client, { slot: config.slot, publication: config.publication, tables: config.tables, republish: republishScope(config), rowFilter: opts.rowFilter as string | undefined, dryRun: opts.dryRun === true, failoverSlot: opts.failoverSlot === true });
      const failed = report.checks.filter((c) => !c.ok);
      const error = failed.length
        ? checksFailedError(failed, report.dryRun ? '' : '; nothing was created', 'run the fix shown under each failed check, then run setup again')
        : undefined;
      return { data: { ...report }, text: setupText(report), error };
    },
  )
    .option('--dry-run', 'run the checks and print the SQL that would be run, change nothing')
    .option('--failover-slot', FAILOVER_SLOT_OPTION)
    .addOption(rowFilterOption());
}
