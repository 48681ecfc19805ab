import { Option, type Command } from 'commander';
import { republishScope } from '../../source/republish-command.js';
import { createPublication, dropPublication, requirePublication } from '../../ops/publications.js';
import { checkRowFilter } from '../../sql/row-filter.js';
import { existingPublicationChecks } from '../../ops/checks.js';
import { checkedWithSettings } from '../options.js';
import { groupCommand, opsCommand } from './ops-command.js';
import { checksFailedError, checksText, publicationText } from './output.js';

/** --row-filter, shared by `setup` and `publication create`; refused with the settings (exit 2) if it could leave its WHERE (…). */
export function rowFilterOption(): Option {
  return new Option('--row-filter <sql-expr>', "PostgreSQL 15 row filter: only rows matching it are published, e.g. \"aggregate_type <> 'internal'\"").argParser(checkedWithSettings(checkRowFilter));
}

const create = () =>
  opsCommand(
    {
      settings: 'publication create',
      changes: true,
      name: 'create',
      description: 'Create the insert-only publication on the outbox table; "already exists" is not an error when it publishes what is asked for (else exit 1, PG_SETUP_CHECKS_FAILED, with the ALTER PUBLICATION to run).',
      examples: ['outbox-relay publication create --table public.outbox', `outbox-relay publication create --row-filter "aggregate_type <> 'internal'"`],
    },
    async ({ client, config, opts }) => {
      const rowFilter = opts.rowFilter as string | undefined;
      const { created, publication } = await createPublication(client, config.publication, config.tables, rowFilter);
      const text = `publication "${publication.name}": ${created ? 'created' : 'already exists'}\n\n${publicationText(publication)}`;
      if (created) return { data: { created, publication }, text };
      // One found is left as it is: "already exists" only when it is the one asked for (tables, insert only, filter).
      const checks = await existingPublicationChecks(client, publication, config.tables, rowFilter);
      const failed = checks.filter((c) => !c.ok);
      if (failed.length === 0) return { data: { created, publication }, text };
      return {
        data: { created, publication, checks },
        text: `${text}\n\n${checksText(checks)}`,
        error: checksFailedError(failed, `; publication "${publication.name}" exists, and differs from the one asked for`, 'run the fix shown under each failed check (as the table owner), or drop the publication and create it again'),
      };
    },
  ).addOption(rowFilterOption());

const drop = () =>
  opsCommand(
    {
      settings: 'publication drop',
      changes: true,
      name: 'drop',
      description:
        'Drop the publication. While the relay\'s slot (--slot), or any other pgoutput slot of this database, exists only with --force (else exit 6 naming them and saying what it costs): a slot streaming with it can no longer stream, and rows written until the publication exists again are never published; it prints how to go on, ending with the outbox-relay republish --since … --publication … that re-sends them, with the publication of its settings and, when the tables setting lists the tables, --tables.',
      examples: ['outbox-relay publication drop --publication outbox_relay', 'outbox-relay publication drop --force    # a slot exists: drop anyway'],
    },
    async ({ client, config, opts }) => {
      const { dropped, consequence } = await dropPublication(client, republishScope(config), config.slot, opts.force === true);
      const text = `publication "${config.publication}": ${dropped ? 'dropped' : 'does not exist, nothing to drop'}${consequence ? `\n${consequence}` : ''}`;
      return { data: { dropped, ...(consequence ? { consequence } : {}) }, text };
    },
  ).option('--force', 'drop it even though the relay\'s or another pgoutput replication slot of this database exists');

const show = () =>
  opsCommand(
    {
      settings: 'publication show',
      name: 'show',
      description: 'Show the publication: its tables, the actions it publishes and the row filters.',
      examples: ['outbox-relay publication show', 'outbox-relay publication show --json'],
    },
    async ({ client, config }) => {
      const publication = await requirePublication(client, { slot: config.slot, ...republishScope(config) });
      return { data: { ...publication }, text: publicationText(publication) };
    },
  );

export function publicationCommand(): Command {
  return groupCommand('publication', 'Manage the publication that limits the replication stream to outbox INSERTs: create, drop, show.', [
    'outbox-relay publication show',
    'outbox-relay publication create --help',
  ])
    .addCommand(create())
    .addCommand(drop())
    .addCommand(show());
}
