/**
 * --json promises a script one JSON document on stdout. A command that printed its result and then crashed, or
 * met its watchdog while closing, printed a second one, `{"error": …}`, and `JSON.parse` of the output failed.
 * Once a result is printed, a later error is in its log line on stderr, and the exit code tells it. (An error
 * document is always the process's last: it exits after it.)
 */
let resultPrinted = false;
/** The error document went to stderr: stdout failed to take it. */
let errorMoved = false;

/** Prints the command's result document. */
export function printJsonResult(data: unknown): void {
  resultPrinted = true;
  process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
}

/**
 * Prints an error document; false, and nothing written, after a result. A stdout that fails to take it (full:
 * `> /dev/full`) gets it on stderr instead: the error was printed nowhere, and the one that followed,
 * OUTPUT_FAILED, went to the same full stdout.
 */
export function printJsonError(data: unknown): boolean {
  if (resultPrinted) return false;
  const text = `${JSON.stringify(data)}\n`;
  process.stdout.write(text);
  // Set at once by a write that failed (its error event comes later).
  if (process.stdout.errored) {
    errorMoved = true;
    process.stderr.write(text);
  }
  return true;
}

/** True once an error document went to stderr instead: stdout's write error that follows is accounted for. */
export function errorDocumentMoved(): boolean {
  return errorMoved;
}
