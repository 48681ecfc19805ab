import type { Logger } from 'pino';

/** The lines of one kind of outage: a warn line when it starts, a debug line per later failed attempt, an info line when it ends. */
export interface OutageLines {
  started: string;
  ongoing: string;
  ended: string;
}

/**
 * What every retry loop says about its trouble: one warn line when it starts, the attempts after it at debug, one
 * info line when it ends (with how long it lasted and how many attempts failed). A 50 s outage is one incident in
 * the log, not a line per attempt; the lines name what failed, the fields carry the figures.
 */
export class OutageLog {
  private since: number | undefined;
  private failures = 0;

  constructor(
    private readonly logger: Logger,
    private readonly lines: OutageLines,
    private readonly now: () => number = Date.now,
  ) {}

  /** An outage is under way. */
  get down(): boolean {
    return this.since !== undefined;
  }

  /** When the outage under way began (undefined when there is none): /readyz says since when the relay retries. */
  get startedAt(): number | undefined {
    return this.since;
  }

  /** Failed attempts of the outage under way (0 when there is none): the backoff's attempt index. */
  get attempts(): number {
    return this.failures;
  }

  /** How long the outage under way has lasted (0 when there is none): what a retry.maxDuration bound compares. */
  downMs(): number {
    return this.since === undefined ? 0 : this.now() - this.since;
  }

  /**
   * An attempt failed; `lines` names this attempt's cause where one loop meets several (Kafka or PostgreSQL).
   * `attemptStartedAt`: when the failed attempt began, for an attempt that can hang until its own timeout (a query
   * bounded at minutes): the outage began then, not at the failure, and its end line's downMs says so.
   * True when this failure started the outage (its warn line), for what else happens once per outage.
   */
  failed(fields: Record<string, unknown>, lines: Partial<Omit<OutageLines, 'ended'>> = {}, attemptStartedAt = this.now()): boolean {
    this.failures++;
    if (this.since !== undefined) {
      this.logger.debug({ ...fields, attempt: this.failures }, lines.ongoing ?? this.lines.ongoing);
      return false;
    }
    this.since = attemptStartedAt;
    this.logger.warn(fields, lines.started ?? this.lines.started);
    return true;
  }

  /**
   * The outage is over, ended by what a line of the caller's says (a reconnect that found the slot held by another
   * instance is a standby, not a recovery): no end line, and the next failure starts a new outage.
   */
  endedAs(): void {
    this.since = undefined;
    this.failures = 0;
  }

  /** An attempt worked: the end line when an outage was under way (true then). `fields` may carry the caller's own downMs and attempts. */
  recovered(fields: Record<string, unknown> = {}): boolean {
    if (this.since === undefined) return false;
    this.logger.info({ downMs: this.now() - this.since, attempts: this.failures, ...fields }, this.lines.ended);
    this.since = undefined;
    this.failures = 0;
    return true;
  }
}

/**
 * Lines a retried step logs at every attempt though they report no failure of it: a start whose first attempts
 * failed decides again at each one (reads the checkpoint, chooses the start position, changes the replay window).
 * A line is logged at its level when it says something new, at debug when it repeats the last one of its message
 * word for word: an outage is its own start and end lines, not an info or warn line per attempt besides.
 */
export class RepeatedLines {
  private readonly said = new Map<string, string>();

  constructor(private readonly logger: Logger) {}

  info(fields: Record<string, unknown>, msg: string): void {
    this.say('info', fields, msg);
  }

  /** A decision that puts something at risk (WAL PostgreSQL may release), or a step of it that failed and is retried. */
  warn(fields: Record<string, unknown>, msg: string): void {
    this.say('warn', fields, msg);
  }

  private say(level: 'info' | 'warn', fields: Record<string, unknown>, msg: string): void {
    const text = JSON.stringify(fields);
    this.logger[this.said.get(msg) === text ? 'debug' : level](fields, msg);
    this.said.set(msg, text);
  }
}
