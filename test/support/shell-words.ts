/** A printed command's words as a shell gives them to the program: bare characters, \-escaped ones and single-quoted parts. */
export function shellWords(command: string): string[] {
  const part = /\\(.)|'([^']*)'|([^\s'\\])/gy;
  return [...command.matchAll(/(?:\\.|'[^']*'|[^\s'\\])+/g)].map(([word]) => word.replace(part, (_, escaped, quoted, bare) => escaped ?? quoted ?? bare));
}
