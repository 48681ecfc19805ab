/**
 * One error type for everything the relay reports to a user. `code` is stable (logs, metrics and docs refer
 * to it), `retriable` tells the retry helper whether trying again can help, and `hint` says what to do.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'PG_CONNECT_FAILED'
  | 'PG_WAL_LEVEL'
  | 'PG_NO_REPLICATION_PRIVILEGE'
  | 'PG_SLOT_MISSING'
  | 'PG_SLOT_WRONG_PLUGIN'
  | 'PG_SLOT_WRONG_DATABASE'
  | 'PG_SLOT_ACTIVE'
  | 'PG_SLOT_LOST'
  | 'PG_SLOT_RECREATED'
  | 'PG_PUBLICATION_MISSING'
  | 'PG_TABLE_NOT_PUBLISHED'
  | 'PG_STREAM_FAILED'
  | 'PG_PROTOCOL'
  | 'PG_PERMISSION_DENIED'
  | 'PG_QUERY_FAILED'
  | 'PG_SETUP_CHECKS_FAILED'
  | 'SCHEMA_COLUMN_MISSING'
  | 'SCHEMA_TABLE_RENAMED'
  | 'RECORD_REQUIRED_NULL'
  | 'RECORD_INVALID'
  | 'RECORD_TOO_LARGE'
  | 'TOPIC_NOT_FOUND'
  | 'TOPIC_INVALID'
  | 'KAFKA_UNAVAILABLE'
  | 'KAFKA_AUTH'
  | 'KAFKA_TXN_TIMEOUT'
  | 'RETRIES_EXHAUSTED'
  | 'SHUTDOWN_TIMEOUT'
  | 'SHUTDOWN_FORCED'
  | 'OPERATION_REFUSED'
  | 'CONFIRMATION_REQUIRED'
  | 'PRODUCER_FENCED'
  | 'CHECKPOINT_FAILED'
  | 'REPLAY_OUT_OF_WINDOW'
  | 'START_LSN_BEYOND_WAL'
  | 'CHECKPOINT_AHEAD_OF_WAL'
  | 'CHECKPOINT_FOREIGN'
  | 'CHECKPOINT_TOPIC_POLICY'
  | 'RELAY_UNREACHABLE'
  | 'RELAY_HALTED'
  | 'RELAY_UNHEALTHY'
  | 'RELAY_NOT_READY'
  | 'INTERRUPTED'
  | 'OUTPUT_FAILED'
  | 'INTERNAL';

export interface RelayErrorOptions {
  retriable?: boolean;
  cause?: unknown;
  hint?: string;
  details?: Record<string, unknown>;
}

export class RelayError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: RelayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RelayError';
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.hint = options.hint ?? DEFAULT_FIXES[code];
    this.details = options.details ?? {};
  }

  /**
   * This error with where it happened, which the code that raised it did not know: `(where)` after the message,
   * `details` beside its own; code, fix, cause and retriability as they were.
   */
  within(where: string, details: Record<string, unknown>): RelayError {
    return this.copy(`${this.message} (${where})`, details);
  }

  /** This error with `details` beside its own, as a new error: whoever holds this one still reads what it read. */
  withDetails(details: Record<string, unknown>): RelayError {
    return this.copy(this.message, details);
  }

  private copy(message: string, details: Record<string, unknown>): RelayError {
    return new RelayError(this.code, message, { retriable: this.retriable, cause: this.cause, hint: this.hint, details: { ...this.details, ...details } });
  }

  /** The message with its remedy, as printed to a terminal. */
  describe(): string {
    return this.hint ? `${this.message}\n  fix: ${this.hint}` : this.message;
  }
}

/** The part of a poison event's fix that exactly-once cannot offer for a record Kafka refused inside a transaction. */
export const DEAD_LETTER_ALTERNATIVE = ', or run with delivery.onPoison=dead-letter';
/** How to get past a poison event (README: Poison event), after fixing its cause. */
export const PAST_THE_EVENT = `then restart; to get past this event instead: outbox-relay slot advance <its commit LSN + 1> --yes-skip-events${DEAD_LETTER_ALTERNATIVE}`;

/**
 * The fix for codes whose remedy does not depend on where they were raised (poison events, an exhausted retry
 * budget), so that every halt or exit line carries one, whichever component raised it.
 */
const DEFAULT_FIXES: Partial<Record<ErrorCode, string>> = {
  INTERNAL: 'a defect of outbox-relay: report it with this line (and the stack printed with it, or logged at --log-level debug); a restart resumes at the confirmed position',
  KAFKA_UNAVAILABLE: 'check that the relay reaches every address in kafka.brokers and the listeners the brokers advertise (advertised.listeners), and the TLS/SASL settings',
  RETRIES_EXHAUSTED: 'the service named in the message stayed unreachable for retry.maxDuration: fix it (network, address, credentials); the restart resumes at the confirmed position. Raise retry.maxDuration to wait longer',
  RECORD_REQUIRED_NULL: `the row has NULL in a column the mapping needs (id, key, payload, or one the topic uses): fix its writer, or map another column; ${PAST_THE_EVENT}`,
  RECORD_INVALID: `the row cannot become a Kafka record as it is (see the message): fix its writer; ${PAST_THE_EVENT}`,
  TOPIC_INVALID: `the row's values give an illegal topic name: fix its writer, or the topic template / routes (A-Z a-z 0-9 . _ -, at most 249 characters); ${PAST_THE_EVENT}`,
  TOPIC_NOT_FOUND: `create the topic (the relay never creates event topics, nor lets the broker auto-create them); ${PAST_THE_EVENT}`,
  RECORD_TOO_LARGE: `raise the topic's max.message.bytes (and the broker's message.max.bytes; with the rdkafka client also its own message.max.bytes, 1000000 by default, in kafka.producer), or make the payload smaller; ${PAST_THE_EVENT}`,
};

export function isRelayError(err: unknown): err is RelayError {
  return err instanceof RelayError;
}

const FULL = 'the file system the output goes to (stdout, or stderr) is full, or its quota is used up: free space there, or send the output elsewhere';

/**
 * Errors of a write to a full or failing file or device, each with its fix. EIO is not a full disk: mostly a
 * terminal that is gone (its ssh session closed, its window shut) while the command still wrote to it.
 */
const OUTPUT_FIXES = new Map([
  ['ENOSPC', FULL],
  ['EDQUOT', FULL],
  ['EFBIG', 'the file the output goes to (stdout, or stderr) reached the largest size allowed (ulimit -f, or the file system\'s): send the output elsewhere, or raise the limit'],
  ['EIO', 'the terminal or device the output goes to (stdout, or stderr) failed, most often a terminal that is gone (its ssh session closed): run the command where its output stays read (tmux, screen, nohup, or a redirection to a file), or check the device'],
]);

/**
 * A RelayError as it is; a write that failed for the file or device it went to (`outbox-relay … > /dev/full`, a
 * disk that filled up) as OUTPUT_FAILED, which is not a defect; anything else is a defect, INTERNAL (its text keeps
 * the JavaScript error's name).
 */
export function asRelayError(err: unknown): RelayError {
  if (isRelayError(err)) return err;
  const errno = err as NodeJS.ErrnoException;
  const fix = err instanceof Error && errno.syscall === 'write' ? OUTPUT_FIXES.get(errno.code ?? '') : undefined;
  if (fix !== undefined) {
    return new RelayError('OUTPUT_FAILED', `writing the output failed: ${errno.message}`, { cause: err, hint: fix });
  }
  return new RelayError('INTERNAL', String(err), { cause: err });
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
