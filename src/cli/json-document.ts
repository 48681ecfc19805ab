/**
 * --json promises a script one JSON document on stdout. A command that printed its result and then crashed, or
 * met its watchdog while closing, printed a second one, `{"error": …}`, and `JSON.parse` of the output failed.
 * Once a result is printed, a later error is in its log line on stderr, and the exit code tells it. (An error
 * document is always the process's last: it exits after it.)
 */
let resultPrinted = false;

/** Prints the command's result document. */
export function printJsonResult(data: unknown): void {
  resultPrinted = true;
  process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
}

/** Prints an error document; false, and nothing written, after a result. */
export function printJsonError(data: unknown): boolean {
  if (resultPrinted) return false;
  process.stdout.write(`${JSON.stringify(data)}\n`);
  return true;
}
