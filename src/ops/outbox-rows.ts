import type pg from 'pg';
import type { TableMapping } from '../config/types.js';
import type { RelationMessage } from '../decode/pgoutput.js';
import { RelayError } from '../errors.js';
import { quoteIdent, quoteQualified } from '../sql/quote.js';

/**
 * The outbox table as pgoutput would announce it: columns in attribute order with their type oids. Generated
 * columns are left out because pgoutput leaves them out, so a RowMapper compiled from this sees the same layout
 * as the one the relay compiles from the stream.
 */
export async function describeTable(client: pg.Client, mapping: TableMapping): Promise<RelationMessage> {
  const name = quoteQualified(mapping.schema, mapping.table);
  const { rows } = await client.query<{ oid: number | null; name: string | null; type_oid: number | null; is_key: boolean | null }>(
    `SELECT c.oid, a.attname AS name, a.atttypid::int AS type_oid,
            COALESCE(a.attnum = ANY(i.indkey::int2[]), false) AS is_key
       FROM (SELECT to_regclass($1)::oid AS oid) c
       LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
       LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
      ORDER BY a.attnum`,
    [name],
  );
  if (rows[0]?.oid === null || rows[0] === undefined) {
    throw new RelayError('PG_QUERY_FAILED', `outbox table ${mapping.schema}.${mapping.table} does not exist`, { hint: 'check --table (or tables:) and the database in --postgres-url' });
  }
  return {
    tag: 'relation',
    relationId: rows[0].oid,
    schema: mapping.schema,
    table: mapping.table,
    columns: rows.map((r) => ({ name: r.name!, typeOid: r.type_oid!, isKey: r.is_key === true })),
  };
}

/**
 * The row filter (`WHERE (…)`, PostgreSQL 15+) of `publication` on the table, as pg_publication_tables prints it
 * (`rowFilter` undefined when it has none). `publication`: 'missing' when no publication has that name (dropped, or
 * not the relay's), 'without-table' when it exists but does not hold the table (taken out of it). Rows a filter
 * leaves out were never in the stream, so the relay never produced them: re-sending them would put events in Kafka
 * for the first time.
 */
export async function publicationRowFilter(
  client: pg.Client,
  publication: string,
  relation: RelationMessage,
): Promise<{ publication: 'published' | 'without-table' | 'missing'; rowFilter: string | undefined }> {
  const { rows } = await client.query<{ published: boolean; rowfilter: string | null }>(
    `SELECT t.pubname IS NOT NULL AS published, t.rowfilter
       FROM pg_publication p LEFT JOIN pg_publication_tables t ON t.pubname = p.pubname AND t.schemaname = $2 AND t.tablename = $3
      WHERE p.pubname = $1`,
    [publication, relation.schema, relation.table],
  );
  const row = rows[0];
  return { publication: !row ? 'missing' : row.published ? 'published' : 'without-table', rowFilter: row?.rowfilter ?? undefined };
}

/** pg_type's `timestamp` (without time zone). */
const TIMESTAMP_OID = 1114;
/** timestamp, timestamptz, date: what --since and --until can be compared with. */
const TIME_OIDS = new Set([TIMESTAMP_OID, 1184, 1082]);

/**
 * An id given to --ids as PostgreSQL prints the id column's value it stands for, or undefined when the column's
 * input function refuses it (uuid: 32 hex digits in either case, a hyphen after any group of four, optional braces,
 * printed lower case 8-4-4-4-12; integers: blanks, a sign and zeros in front allowed, in range). A row is found by
 * the text it comes back with, so `007` or an upper-case uuid was reported not found although it was sent. An id
 * that is not of the column's type failed the whole query (22P02: exit 1, nothing sent); it is left out of it
 * instead, and reported among those not found. Ids of other types are compared as given.
 */
const ID_FORMS: Record<number, (id: string) => string | undefined> = {
  2950: (id) => (/^(?:\{[0-9a-f]{4}(?:-?[0-9a-f]{4}){7}\}|[0-9a-f]{4}(?:-?[0-9a-f]{4}){7})$/i.test(id) ? uuidText(id.replace(/[{}-]/g, '').toLowerCase()) : undefined),
  20: (id) => integerWithin(id, 63),
  23: (id) => integerWithin(id, 31),
  21: (id) => integerWithin(id, 15),
};

function uuidText(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function integerWithin(id: string, bits: number): string | undefined {
  if (!/^\s*[+-]?\d+\s*$/.test(id)) return undefined;
  const n = BigInt(id.trim());
  return n >= -(1n << BigInt(bits)) && n < 1n << BigInt(bits) ? String(n) : undefined;
}

/** Which rows to re-send: written at or after a time (and before `until`), or these ids. */
export type RowSelection = { since: string; until?: string } | { ids: string[] };

/**
 * Reads the selected rows in pages ordered by (time column, id column), each page continuing after the last row
 * of the previous one (keyset pagination: no OFFSET, so page N costs what page 1 costs). Every column comes as
 * text, the format pgoutput sends (bytea as `\x…` hex).
 */
export class OutboxPages {
  /** `FROM … WHERE …` of the selection, shared by the page query and count(). */
  private readonly from: string;
  private readonly select: string;
  private readonly orderBy: string;
  private readonly keyset: string;
  private readonly time: string;
  private readonly id: string;
  private readonly timeIndex: number;
  private readonly idIndex: number;
  /** --ids: those the id column's type can hold, as PostgreSQL prints them. */
  private readonly ids: string[] = [];
  /** --ids: a given id as PostgreSQL prints it (idForm), and the ids of the rows read, so printed. */
  private readonly idForm: (id: string) => string | undefined = (id) => id;
  private readonly read = new Set<string>();
  /** Whether the pages carry the publication's verdict (rowFilter), and the rows of them it leaves out. */
  private readonly filtered: boolean;
  private readonly unpublished = new WeakSet<(string | null)[]>();
  /** Time (NULL with --ids: the column may hold none) and id of the last row read. */
  private after: [string | null, string] | undefined;
  private first: [string | null, string] | undefined;

  constructor(
    private readonly client: pg.Client,
    relation: RelationMessage,
    private readonly selection: RowSelection,
    timeColumn: string,
    idColumn: string,
    /** The publication's row filter on the table (publicationRowFilter): rows it leaves out are read, not sent. */
    rowFilter?: string,
  ) {
    const indexOf = (column: string, what: string): number => {
      const i = relation.columns.findIndex((c) => c.name === column);
      if (i < 0) {
        throw new RelayError('SCHEMA_COLUMN_MISSING', `column "${column}" (${what}) is missing from ${relation.schema}.${relation.table}`, {
          hint: what === '--time-column' ? 'name the column that holds when a row was written: --time-column <column>' : 'check mapping.id',
        });
      }
      return i;
    };
    this.timeIndex = indexOf(timeColumn, '--time-column');
    // Compared with --since and --until as a time, and read back as where to resume: a text column failed in
    // PostgreSQL (22P02) with its generic fix, or in the row's mapping with the suggestion '--since <its text>'.
    const timeType = relation.columns[this.timeIndex]!.typeOid;
    if (!TIME_OIDS.has(timeType)) {
      throw new RelayError('CONFIG_INVALID', `column "${timeColumn}" of ${relation.schema}.${relation.table}, the time republish selects and orders rows by, is not a timestamp (type oid ${timeType})`, {
        hint: 'name the column that holds when a row was written (timestamp or timestamptz): --time-column <column> (default: mapping.timestamp, else created_at)',
      });
    }
    this.idIndex = indexOf(idColumn, 'mapping.id');
    if ('ids' in selection) {
      this.idForm = ID_FORMS[relation.columns[this.idIndex]!.typeOid] ?? this.idForm;
      this.ids = selection.ids.map(this.idForm).filter((id) => id !== undefined);
    }
    const t = (this.time = quoteIdent(timeColumn));
    const id = (this.id = quoteIdent(idColumn));
    // One more value after the columns: whether the publication's row filter lets the row through (NULL does not).
    this.filtered = rowFilter !== undefined;
    const columns = relation.columns.map((c) => `${quoteIdent(c.name)}::text`).join(', ') + (rowFilter === undefined ? '' : `, ((${rowFilter}) IS TRUE)::text`);
    // Untyped parameters take the column's type, so comparisons use the table's own types and its indexes. But a
    // `timestamp` (without time zone) parameter drops an offset: --since 08:00+02:00 selected from 08:00 UTC, and
    // two hours of rows were never re-sent. Such a column holds UTC (as the relay reads it), so a time is
    // converted to UTC first; a value without an offset is UTC either way (the connection's TimeZone).
    const at = (n: number): string => (relation.columns[this.timeIndex]!.typeOid === TIMESTAMP_OID ? `($${n}::timestamptz AT TIME ZONE 'UTC')` : `$${n}`);
    const where = 'since' in selection ? `${t} >= ${at(1)}${selection.until === undefined ? '' : ` AND ${t} < ${at(2)}`}` : `${id} = ANY($1)`;
    this.from = ` FROM ${quoteQualified(relation.schema, relation.table)} WHERE ${where}`;
    this.select = `SELECT ${columns}${this.from}`;
    this.orderBy = `ORDER BY ${t}, ${id}`;
    const next = this.filterValues.length + 1;
    this.keyset = `(${t}, ${id}) > (${at(next)}, $${next + 1})`;
  }

  private get filterValues(): unknown[] {
    if (!('since' in this.selection)) return [this.ids];
    return this.selection.until === undefined ? [this.selection.since] : [this.selection.since, this.selection.until];
  }

  /** How many rows the selection holds now (for the progress bar). */
  async count(): Promise<number> {
    // Not sliced from the page query at its first ' FROM ': a column named so (quoted) holds one.
    const { rows } = await this.client.query<{ n: string }>(`SELECT count(*)::text AS n${this.from}`, this.filterValues);
    return Number(rows[0]!.n);
  }

  /** The next page of at most `limit` rows, as text values; empty when the selection is exhausted. */
  async next(limit: number): Promise<(string | null)[][]> {
    const params: unknown[] = [...this.filterValues];
    let sql = this.select;
    if (this.after) {
      const [time, id] = this.after;
      // --since only selects rows with a time. --ids also selects rows whose time is NULL, which ORDER BY puts
      // last and a row comparison with a NULL never passes: without these, every such row after the first page
      // was never read (and reported as not found).
      if ('since' in this.selection) {
        sql += ` AND ${this.keyset}`;
        params.push(time, id);
      } else if (time === null) {
        sql += ` AND ${this.time} IS NULL AND ${this.id} > $${params.length + 1}`;
        params.push(id);
      } else {
        sql += ` AND (${this.keyset} OR ${this.time} IS NULL)`;
        params.push(time, id);
      }
    }
    params.push(limit);
    const { rows } = await this.client.query<(string | null)[]>({ text: `${sql} ${this.orderBy} LIMIT $${params.length}`, values: params, rowMode: 'array' });
    if (this.filtered) {
      for (const row of rows) if (row.pop() !== 'true') this.unpublished.add(row);
    }
    if (!('since' in this.selection)) for (const row of rows) this.read.add(row[this.idIndex]!);
    const [first, last] = [rows[0], rows.at(-1)];
    if (first && last) {
      this.first = [first[this.timeIndex] ?? null, first[this.idIndex]!];
      this.after = [last[this.timeIndex] ?? null, last[this.idIndex]!];
    }
    return rows;
  }

  /** The first row of the last page read: a run that failed on that page resumes with --since its time. */
  get pageStart(): { time: string | undefined; id: string } | undefined {
    return this.first && { time: this.first[0] ?? undefined, id: this.first[1] };
  }

  /** The time of the last row read: a run stopped after its page was sent resumes with --since that time. */
  get lastTime(): string | undefined {
    return this.after?.[0] ?? undefined;
  }

  /** --ids: whether a row read so far has this given id, in whatever form PostgreSQL's input function accepts. */
  found(id: string): boolean {
    const printed = this.idForm(id);
    return printed !== undefined && this.read.has(printed);
  }

  /** Whether the publication's row filter leaves this row of `next()` out: it was never in the stream. */
  unpublishedRow(row: (string | null)[]): boolean {
    return this.unpublished.has(row);
  }

  /** The time column's text value in a row of `next()`. */
  timeOf(row: (string | null)[]): string | null {
    return row[this.timeIndex] ?? null;
  }
}
