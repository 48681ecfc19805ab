import pino, { type DestinationStream, type Logger } from 'pino';
import { nonBlockingStdout, type PipeDestination } from './log-pipe.js';

export type { Logger } from 'pino';

/**
 * JSON lines on stdout (or `destination`); components take a child logger (`{ module: 'source' }`) and never
 * create their own. Written synchronously: pino's default destination hands each write to libuv's thread pool, and
 * an exit that does not wait for that pool (process-exit.ts) lost the error line whose write had not run yet, queued
 * behind a librdkafka call blocked on a broker that stopped answering, or not yet given a core. On a pipe or a
 * socket, without blocking: what its reader has not taken is held, bounded, and written at the exit (log-pipe.ts). No line is
 * written per delivered event.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    // Every exit other than 0 writes one error line with its code and fix: fatal (no line of the relay's is fatal)
    // and silent hid it, and the process ended 1 without a word.
    level: level === 'fatal' || level === 'silent' ? 'error' : level,
    base: { service: 'outbox-relay' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: ['password', '*.password', 'sasl.password', 'connectionString'], censor: '***' },
  };
  if (destination) return pino(options, destination);
  const out = stdoutThenStderr();
  const logger = pino(options, out);
  out.onSwitch = (err) => logger.warn({ err: err.message }, 'writing the log to stdout failed: the log goes to stderr from here');
  out.onDropped = (count) =>
    logger.warn({ dropped: count }, `${count} log line(s) dropped: the reader of stdout stopped reading, and the lines it had not taken filled the log's buffer`);
  return logger;
}

interface SwitchingDestination extends PipeDestination {
  onSwitch?: (err: NodeJS.ErrnoException) => void;
}

/**
 * Stdout, and stderr once a write to stdout fails. The log is where a failure's one error line goes: with stdout
 * closed (`run | head -1`) or full (a disk that filled up) that line was lost, or the write error itself ended the
 * process as a defect (INTERNAL). The line whose write failed is written again to stderr.
 */
function stdoutThenStderr(): SwitchingDestination {
  let current: DestinationStream;
  let failure: NodeJS.ErrnoException | undefined;
  // sonic-boom emits it synchronously, inside the write that failed (twice for some errors: once is enough); that
  // line is written again below.
  const failed = (err: NodeJS.ErrnoException) => {
    if (current !== stdout) return;
    failure = err;
    current = stderrOrNothing();
  };
  // A pipe or a socket is written without blocking (log-pipe.ts), and may fail outside a write (a retry, the exit): it hands
  // over every line it did not write, the one being written included.
  const pipe = nonBlockingStdout((err, unwritten) => {
    current = stderrOrNothing();
    for (const line of unwritten) current.write(line);
    destination.onSwitch?.(err);
  });
  const stdout: DestinationStream = pipe ?? pino.destination({ dest: 1, sync: true }).on('error', failed);
  current = stdout;
  const destination: SwitchingDestination = {
    write(line: string) {
      const target = current;
      target.write(line);
      if (current === target || failure === undefined) return;
      const err = failure;
      failure = undefined;
      current.write(line);
      destination.onSwitch?.(err);
    },
  };
  if (pipe) pipe.onDropped = (count) => destination.onDropped?.(count);
  return destination;
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * Stderr, and nothing once a write to it failed: nobody can read the lines, and delivery goes on (metrics and
 * /readyz still tell). Not sonic-boom's own way: it keeps the failed write and retries it before each later one,
 * holding every later line in memory (78 MB more heap after 200k lines with stdout and stderr on /dev/full), and
 * without an error listener the failure is thrown into whatever logged.
 */
export function stderrOrNothing(): DestinationStream {
  const stderr = pino.destination({ dest: 2, sync: true });
  let failed = false;
  stderr.on('error', () => {
    failed = true;
  });
  return {
    write(line: string) {
      if (!failed) stderr.write(line);
    },
  };
}
