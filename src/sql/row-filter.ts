import { ConfigError } from '../config/load.js';

/**
 * A publication row filter is SQL by nature, so unlike identifiers it cannot be quoted. What must hold is
 * that it stays one expression inside `WHERE (...)`: nothing in it may close that parenthesis, end the
 * statement or comment out the rest. This scanner reads quotes the way the server does; backslashes and
 * dollar signs are refused outright because their meaning depends on server settings (E'' strings,
 * standard_conforming_strings, dollar quoting) and a filter never needs them. The statement is then sent with
 * the extended protocol, which the server refuses to run as more than one command.
 */
export function checkRowFilter(expression: string): string {
  const text = expression.trim();
  const reject = (why: string) =>
    new ConfigError(`invalid --row-filter ${JSON.stringify(expression)}: ${why}`, `pass one boolean SQL expression over the outbox table's columns, e.g. --row-filter "aggregate_type <> 'internal'"`);
  if (text === '') throw reject('it is empty');
  // Anywhere, quotes included: inside E'…' a backslash escapes the closing quote, so a string would end later than it seems.
  if (text.includes('\\')) throw reject('backslashes are not allowed');
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "'" || c === '"') {
      const close = text.indexOf(c, i + 1);
      if (close < 0) throw reject(`a ${c === "'" ? 'string' : 'quoted identifier'} is not closed`);
      // A doubled quote is an escaped quote: the scan simply continues after it, as the server's lexer does.
      i = close;
      continue;
    }
    if (c === '$') throw reject('dollar signs (dollar quoting, parameters) are not allowed');
    if (c === ';') throw reject('semicolons are not allowed');
    if (text.startsWith('--', i) || text.startsWith('/*', i)) throw reject('comments are not allowed');
    if (c === '(') depth++;
    if (c === ')' && --depth < 0) throw reject('it closes a parenthesis it did not open');
  }
  if (depth !== 0) throw reject('a parenthesis is not closed');
  return text;
}
