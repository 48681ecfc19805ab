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
  | 'PG_PUBLICATION_MISSING'
  | 'PG_TABLE_NOT_PUBLISHED'
  | 'PG_STREAM_FAILED'
  | 'PG_PROTOCOL'
  | 'PG_PERMISSION_DENIED'
  | 'PG_QUERY_FAILED'
  | 'PG_SETUP_CHECKS_FAILED'
  | 'SCHEMA_COLUMN_MISSING'
  | 'RECORD_REQUIRED_NULL'
  | 'RECORD_INVALID'
  | 'RECORD_TOO_LARGE'
  | 'TOPIC_NOT_FOUND'
  | 'TOPIC_INVALID'
  | 'KAFKA_UNAVAILABLE'
  | 'KAFKA_AUTH'
  | 'KAFKA_FAILED'
  | 'RETRIES_EXHAUSTED'
  | 'SHUTDOWN_TIMEOUT'
  | 'OPERATION_REFUSED'
  | 'CONFIRMATION_REQUIRED'
  | 'PRODUCER_FENCED'
  | 'KAFKA_TXN_TIMEOUT'
  | 'CHECKPOINT_FAILED'
  | 'REPLAY_OUT_OF_WINDOW'
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
    this.hint = options.hint;
    this.details = options.details ?? {};
  }

  /** The message with its remedy, as printed to a terminal. */
  describe(): string {
    return this.hint ? `${this.message}\n  fix: ${this.hint}` : this.message;
  }
}

export function isRelayError(err: unknown): err is RelayError {
  return err instanceof RelayError;
}

/** Programming errors are never worth a retry. */
export function isProgrammingError(err: unknown): boolean {
  return err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError || err instanceof ReferenceError;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
