import type pg from 'pg';

/** One outbox row: every column as the text PostgreSQL sends (`::text`), NULL as null. */
export type OutboxRow = Record<string, string | null>;

const TYPE_OIDS: Record<string, number> = { payload: 3802, headers: 3802, created_at: 1184 };

/**
 * An ordinary connection to a database holding one outbox table, for republish: it answers the catalog query of
 * describeTable, and the count and page queries of OutboxPages by evaluating the predicates they are built from
 * with PostgreSQL's semantics (NULL compares as unknown, also inside a row comparison; ORDER BY puts NULLs last).
 * Times are ISO text of one format, so text order is time order. Any other statement fails the test.
 */
export class FakeOutbox {
  readonly statements: string[] = [];
  /** The parameters of each statement, in order. */
  readonly parameters: unknown[][] = [];

  constructor(
    readonly rows: OutboxRow[],
    readonly columns = ['id', 'aggregate_type', 'aggregate_id', 'event_type', 'payload', 'headers', 'created_at'],
    /** Type oids of columns other than the usual ones (text unless named here). */
    readonly types: Record<string, number> = {},
    /**
     * The row filter of the publication that publishes the table (PostgreSQL 15+): its text and what it lets through;
     * 'without-table': the publication exists but does not publish the table; undefined: there is no publication.
     */
    readonly publication?: { rowFilter: string; passes: (row: OutboxRow) => boolean } | 'without-table',
  ) {}

  get client(): pg.Client {
    return { query: (q: string | { text: string; values: unknown[] }, values?: unknown[]) => this.query(typeof q === 'string' ? q : q.text, typeof q === 'string' ? (values ?? []) : q.values) } as unknown as pg.Client;
  }

  private async query(text: string, values: unknown[]): Promise<{ rows: unknown[] }> {
    this.statements.push(text);
    this.parameters.push(values);
    if (text.startsWith('SET TIME ZONE')) return { rows: [] };
    if (text.includes('pg_publication_tables')) {
      const filter = this.filter;
      return { rows: this.publication === undefined ? [] : [{ published: filter !== undefined, rowfilter: filter?.rowFilter ?? null }] };
    }
    if (text.includes('to_regclass')) return { rows: this.columns.map((name) => ({ oid: 0x4001, name, type_oid: this.types[name] ?? TYPE_OIDS[name] ?? 25, is_key: name === 'id' })) };
    const selected = this.rows.filter((row) => where(text, values, row) === true);
    if (text.startsWith('SELECT count(*)')) return { rows: [{ n: String(selected.length) }] };
    const order = /ORDER BY "(\w+)", "(\w+)" LIMIT \$(\d+)$/.exec(text);
    if (!order) throw new Error(`fake outbox: unexpected statement ${text}`);
    const [, t, id, limit] = order as unknown as [string, string, string, string];
    const cmp = (a: string | null, b: string | null) => (a === b ? 0 : a === null ? 1 : b === null ? -1 : a < b ? -1 : 1);
    selected.sort((a, b) => cmp(a[t]!, b[t]!) || cmp(a[id]!, b[id]!));
    const filter = this.filter;
    const verdict = filter && text.includes(`((${filter.rowFilter}) IS TRUE)::text FROM `);
    return { rows: selected.slice(0, Number(values[Number(limit) - 1])).map((row) => [...this.columns.map((c) => row[c] ?? null), ...(verdict ? [String(filter.passes(row))] : [])]) };
  }

  private get filter(): { rowFilter: string; passes: (row: OutboxRow) => boolean } | undefined {
    return typeof this.publication === 'object' ? this.publication : undefined;
  }
}

type Truth = boolean | null;
const and = (a: Truth, b: Truth): Truth => (a === false || b === false ? false : a === null || b === null ? null : true);
const or = (a: Truth, b: Truth): Truth => (a === true || b === true ? true : a === null || b === null ? null : false);
const gt = (a: string | null, b: string | null): Truth => (a === null || b === null ? null : a > b);
/** (a1, a2) > (b1, b2): left to right, stopping at the first pair that is unequal or has a NULL, whose result it is. */
const rowGt = (a: [string | null, string | null], b: [string | null, string | null]): Truth => {
  for (let i = 0; i < 2; i++) {
    if (a[i] === null || b[i] === null) return null;
    if (a[i] !== b[i]) return a[i]! > b[i]!;
  }
  return false;
};

/** The WHERE clause of a page or count query, evaluated for one row, conjunct by conjunct. */
function where(text: string, values: unknown[], row: OutboxRow): Truth {
  const clause = text.slice(text.indexOf(' WHERE ') + 7).replace(/ ORDER BY .*$/, '');
  const param = (n: string) => values[Number(n) - 1] as string | null;
  let result: Truth = true;
  for (const part of splitAnd(clause)) {
    let m: RegExpExecArray | null;
    let value: Truth;
    if ((m = /^"(\w+)" >= \$(\d+)$/.exec(part))) value = row[m[1]!] === null ? null : row[m[1]!]! >= param(m[2]!)!;
    else if ((m = /^"(\w+)" < \$(\d+)$/.exec(part))) value = row[m[1]!] === null ? null : row[m[1]!]! < param(m[2]!)!;
    else if ((m = /^"(\w+)" > \$(\d+)$/.exec(part))) value = gt(row[m[1]!]!, param(m[2]!));
    else if ((m = /^"(\w+)" = ANY\(\$(\d+)\)$/.exec(part))) value = row[m[1]!] === null ? null : (values[Number(m[2]) - 1] as string[]).includes(row[m[1]!]!);
    else if ((m = /^"(\w+)" IS NULL$/.exec(part))) value = row[m[1]!] === null;
    else if ((m = /^\(\("(\w+)", "(\w+)"\) > \(\$(\d+), \$(\d+)\) OR "(\w+)" IS NULL\)$/.exec(part)))
      value = or(rowGt([row[m[1]!]!, row[m[2]!]!], [param(m[3]!), param(m[4]!)]), row[m[5]!] === null);
    else if ((m = /^\("(\w+)", "(\w+)"\) > \(\$(\d+), \$(\d+)\)$/.exec(part))) value = rowGt([row[m[1]!]!, row[m[2]!]!], [param(m[3]!), param(m[4]!)]);
    else throw new Error(`fake outbox: unexpected predicate ${part}`);
    result = and(result, value);
  }
  return result;
}

/** Top-level AND conjuncts (not those inside parentheses). */
function splitAnd(clause: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < clause.length; i++) {
    if (clause[i] === '(') depth++;
    else if (clause[i] === ')') depth--;
    else if (depth === 0 && clause.startsWith(' AND ', i)) {
      parts.push(clause.slice(start, i));
      start = i + 5;
    }
  }
  parts.push(clause.slice(start));
  return parts;
}
