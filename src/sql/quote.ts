/**
 * The only way identifiers and literals from settings or flags enter SQL text. The settings schemas already
 * restrict identifiers to plain names; quoting anyway means a schema change can never open an injection.
 */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** `"schema"."table"`. */
export function quoteQualified(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}
