import type { DestinationStream } from 'pino';
import { createLogger, stderrOrNothing, type Logger } from '../logger.js';
import { printJsonResult } from './json-document.js';

/**
 * Where a one-shot command (replay, republish) puts its result and its log lines:
 * - `json` (--json): one JSON document on stdout, for scripts; log lines go to stderr as JSON.
 * - `terminal` (stdout is a terminal): the result as readable lines on stdout, log lines readable on stderr.
 * - `log` (anything else: a container, a pipe): JSON log lines on stdout as `run` writes them; the result is the
 *   last of them (`replay finished`, `republish finished`), which a log collector keeps.
 */
export type OutputMode = 'json' | 'terminal' | 'log';

export function outputMode(json: boolean, tty = process.stdout.isTTY === true): OutputMode {
  if (json) return 'json';
  return tty ? 'terminal' : 'log';
}

export function commandLogger(level: string, mode: OutputMode): Logger {
  if (mode === 'json') return createLogger(level, stderrOrNothing());
  if (mode === 'terminal') return createLogger(level, humanLines(stderrOrNothing()));
  return createLogger(level);
}

/** The effective settings belong in a log file; on a terminal they would bury the lines around them. */
const HIDDEN_ON_TERMINAL = new Set(['level', 'time', 'service', 'msg', 'settings']);

function shown(value: unknown): string {
  return typeof value === 'string' && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
}

/** pino's JSON lines as `HH:MM:SS level message key=value …`, for a person at a terminal. */
export function humanLines(out: { write(text: string): unknown }): DestinationStream {
  return {
    write(line: string) {
      const entry = JSON.parse(line) as Record<string, unknown>;
      const time = typeof entry.time === 'string' ? entry.time.slice(11, 19) : '';
      const fields = Object.entries(entry)
        .filter(([key]) => !HIDDEN_ON_TERMINAL.has(key))
        .map(([key, value]) => `${key}=${shown(value)}`);
      out.write(`${time} ${String(entry.level).padEnd(5)} ${String(entry.msg ?? '')}${fields.length ? `  ${fields.join(' ')}` : ''}\n`);
    },
  };
}

/** The command's result: the JSON document, or readable lines on a terminal; in `log` mode its log line carries it. */
export function printResult(mode: OutputMode, data: Record<string, unknown>, text: string): void {
  if (mode === 'json') printJsonResult(data);
  else if (mode === 'terminal') process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}
