/** The characters of a setting key, a command and an option's name. */
const NAME = /^[\w.-]*/;

/** The character a name was cut at, as a message names it. */
function describeCut(char: string): string {
  if (/\s/.test(char)) return 'whitespace';
  return /^[\x21-\x7e]$/.test(char) ? `'${char}'` : `character U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * A name the relay does not know (a config-file key, a command), as an error shows it: up to its first character
 * that no setting key or command has (outside A-Z a-z 0-9 _ . -). What follows is often a value typed into the
 * name, a secret as often as not: a YAML line `password hunter2:` is the key "password hunter2", and
 * `outbox-relay postgres://user:password@host` the command "postgres://user:password@host". The rest is not shown;
 * `note` says where the name was cut, so that the mistake can still be found in the file or the command line.
 * A name of name characters only is shown whole: a secret typed alone is not told from a mistyped name.
 */
export function shownName(text: string): { name: string; note: string } {
  const name = NAME.exec(text)![0];
  if (name === text) return { name, note: '' };
  return { name: `${name}…`, note: ` (cut at its first ${describeCut(String.fromCodePoint(text.codePointAt(name.length)!))}: the rest may be a value, and is not shown)` };
}
