import type { Logger } from 'pino';
import { RelayError, asRelayError, errorMessage } from '../errors.js';
import { exitNow } from '../process-exit.js';
import { EXIT, printErrorJson, reportError } from './exit.js';
import { errorDocumentMoved } from './json-document.js';

let commandLogger: Logger | undefined;
/** The command that logs prints one JSON document (--json). */
let commandJson = false;

/**
 * A defect that escapes every handler, an exception thrown in a callback or a promise rejection nothing awaits,
 * ended the process with Node's default: exit 1 with its stack as plain text on stderr, outside the JSON log,
 * without a code or a fix. main.ts installs this for every command: one error with code INTERNAL (or the code of
 * the relay's own error that escaped), its fix and the stack, then exit 1 (going on after an uncaught exception is
 * unsafe, and a restart resumes at the confirmed position). A command that logs hands its logger over
 * (logCrashesTo), so that the line is in its log.
 */
export function reportCrashes(): void {
  process.on('uncaughtException', crashed);
  process.on('unhandledRejection', crashed);
  // `outbox-relay … | head -1`: the reader closed stdout. Not a defect (INTERNAL, with a stack): the output nobody
  // reads is dropped, and the command ends with its own exit code.
  // An error document that stdout did not take went to stderr: the failure is told, with its own code and exit.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && !errorDocumentMoved()) crashed(err);
  });
}

/** `json`: the command prints one JSON document (--json), which a crash's error then is too. */
export function logCrashesTo(logger: Logger, json = false): void {
  commandLogger = logger;
  commandJson = json;
}

export function crashed(err: unknown): void {
  if (commandLogger) {
    // One of the relay's own errors keeps its code and fix (what it says is still true), and so does a write to a
    // full device (OUTPUT_FAILED); anything else is INTERNAL.
    const own = asRelayError(err);
    const error = new RelayError(own.code, `an error no handler caught: ${errorMessage(err)}`, { hint: own.hint });
    commandLogger.error({ code: error.code, err: error.message, stack: error.code !== 'OUTPUT_FAILED' && err instanceof Error ? err.stack : undefined, fix: error.hint }, 'crashed');
    // Its log goes to stderr then: a script reading stdout for the result would find nothing.
    if (commandJson) printErrorJson(error);
  } else {
    // As any error before a command logs: a RelayError with its code and fix, anything else as INTERNAL with its
    // stack after the fix (a script that asked for --json gets the error object, as main.ts gives it for a usage
    // error).
    reportError(err, process.argv.includes('--json'));
  }
  // Not process.exit(): its atexit handlers free OpenSSL's locks while a librdkafka broker thread that is connecting
  // may still take one (seeding its random jitter): that crash ended 4 exits in 100 near the start with SIGSEGV (139)
  // instead of 1, after the line above. exitNow ends without atexit handlers once the librdkafka client is loaded.
  exitNow(EXIT.runtime);
}
