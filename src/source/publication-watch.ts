import type pg from 'pg';
import type { Logger } from 'pino';
import type { TableMapping } from '../config/types.js';
import { RelayError, errorMessage, isRelayError } from '../errors.js';
import { OPEN_TRANSACTIONS_SQL, coveredFrom, openTransactionsOf } from '../ops/open-transactions.js';
import { publishedTables, readPublication, type CatalogQuery, type PublicationRow } from './publication-check.js';
import type { SeenPublication } from './seen-publication.js';
import { knownPublication } from './publication-as-it-was.js';
import { PeriodicSideTask, type SideConnection } from './side-connection.js';
import { newSlotThenRepublish } from './publication-dropped.js';
import { republishCommand, type RelayNames } from './republish-command.js';
import { republishSince } from './slot-lost.js';

/** The connection was closed under the check (the relay stops): nothing to report. */
class Closed extends Error {}

/**
 * Checks, while the relay streams, that the publication still publishes the INSERTs of every mapped table, as the
 * session's pre-flight found at its start. pgoutput sends only the rows of tables the publication had when they were
 * written and says nothing of the others: a table taken out of the publication (ALTER PUBLICATION … DROP TABLE, SET
 * TABLE), dropped and created again by a migration (the new one is not in a FOR TABLE publication), or a publication
 * set to publish no INSERTs left the relay streaming nothing while it confirmed the WAL past those rows, which no
 * slot streams again; until its next restart nothing said so. Each check runs on a fresh normal connection (one
 * held open would hold up a smart shutdown); a refusal names the fix and the republish that re-sends the rows
 * written since the last check that found the tables published, and the relay gives up (`refused`). A check that
 * cannot run (PostgreSQL down) is the relay's own outage to report.
 */
export class PublicationWatch {
  private readonly task: PeriodicSideTask;
  /** When the last check found every table published (host clock). */
  private publishedAtMs: number | undefined;
  /**
   * The start of the oldest transaction open at that check, if earlier: one that inserts after the table left the
   * publication is never streamed, and its rows' created_at is its start (OpenTransactions). `hidden`: this role
   * could not see every session's start.
   */
  private openAtPublished: { startMs: number; hidden: boolean } | undefined;
  private failing = false;

  constructor(
    connection: pg.ClientConfig,
    /** The relay's slot, publication, and its tables as a republish names them. */
    private readonly scope: RelayNames,
    private readonly tables: TableMapping[],
    /** The relay's, which its sessions' pre-flights fill too: the column list and row filter a table taken out had are named in the fix. */
    private readonly seen: SeenPublication,
    intervalMs: number,
    /** When the current session's pre-flight began (it found them published then); undefined while not streaming. */
    private readonly streamingSince: () => number | undefined,
    private readonly refused: (error: RelayError) => void,
    private readonly logger: Logger,
  ) {
    this.task = new PeriodicSideTask(connection, 'outbox-relay-publication-check', intervalMs, (c) => this.check(c), logger);
  }

  start(): void {
    this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  private async check(connection: SideConnection): Promise<void> {
    const streamingSince = this.streamingSince();
    if (streamingSince === undefined) return;
    const startedAt = Date.now();
    // Found published at the session's pre-flight or by the last check, whichever came later: taken out after it.
    const byCheck = this.publishedAtMs !== undefined && this.publishedAtMs >= streamingSince;
    const publishedAtMs = byCheck ? this.publishedAtMs! : streamingSince;
    const open = byCheck ? this.openAtPublished : undefined;
    const since = republishSince(open?.startMs ?? publishedAtMs, '');
    const query: CatalogQuery = async (sql) => {
      const rows = await connection.query(sql);
      if (rows === undefined) throw new Closed();
      return rows as never;
    };
    let pub: PublicationRow | undefined;
    try {
      // Before the catalog: a transaction open now is open while the tables are found published.
      const openNow = openTransactionsOf((await query(OPEN_TRANSACTIONS_SQL))[0] as never);
      pub = await readPublication(query, this.scope.publication);
      if (!pub) throw new RelayError('PG_PUBLICATION_MISSING', `publication "${this.scope.publication}" does not exist`);
      await publishedTables(query, this.scope, pub, this.tables, this.seen, since);
      this.publishedAtMs = startedAt;
      this.openAtPublished = { startMs: coveredFrom(startedAt, openNow), hidden: openNow.hidden };
      this.failing = false;
    } catch (err) {
      if (err instanceof Closed || this.task.stopped) return;
      if (isRelayError(err) && (err.code === 'PG_PUBLICATION_MISSING' || err.code === 'PG_TABLE_NOT_PUBLISHED')) return this.refused(this.whileStreaming(err, publishedAtMs, since, !pub, open));
      if (!this.failing) this.logger.debug({ err: errorMessage(err) }, 'cannot check the publication: checked again at the next interval');
      this.failing = true;
    } finally {
      await connection.release();
    }
  }

  /** `error` as found while streaming: the rows written since `publishedAtMs` were not streamed, and never will be. */
  private whileStreaming(error: RelayError, publishedAtMs: number, since: string, missing: boolean, open: { startMs: number; hidden: boolean } | undefined): RelayError {
    const resend = `${republishCommand(since, this.scope)} (consumers dedupe on the id header)`;
    let hint = error.hint;
    // The since covers the transactions open when the tables were last found published, as far as the relay saw them.
    const unseen = !open
      ? '; transactions open at the session\'s start that began more than a minute before it are not covered: take an earlier --since if one ran long'
      : open.hidden
        ? '; transactions open then whose start the relay\'s role could not see (other roles\' sessions: pg_read_all_stats lets it) are not covered: take an earlier --since if one ran long'
        : '';
    if (missing) hint = newSlotThenRepublish(undefined, this.scope, knownPublication(this.scope.publication, this.tables, this.seen), since);
    else if (error.code === 'PG_PUBLICATION_MISSING') hint = `${error.hint} Then start the relay, and re-send what was written since: ${resend}`;
    return new RelayError(error.code, `${error.message}: found while streaming; the tables were published at ${new Date(publishedAtMs).toISOString()}, and the rows written since were not streamed`, {
      hint: hint === undefined ? undefined : `${hint}${unseen}`,
      details: { ...error.details, publishedAt: new Date(publishedAtMs).toISOString() },
    });
  }
}
