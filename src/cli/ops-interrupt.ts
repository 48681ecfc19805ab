import type pg from 'pg';
import { RelayError, errorMessage } from '../errors.js';
import { withClient } from '../ops/connection.js';
import { onStopSignals } from './early-signals.js';
import { EXIT, reportError } from './exit.js';
import { exitNow } from '../process-exit.js';
import { settlesWithin } from '../retry.js';

/**
 * How long a cancelled statement gets to end before its connection is: PostgreSQL answers pg_cancel_backend
 * before the cancelled statement's error (57014) comes back on the command's connection, and a connection ended
 * in between failed the statement with "Connection terminated", reported as one that completed first. A backend
 * waiting on a lock or another transaction stops at once; one busy where it does not check for a cancel for
 * longer than this is reported as possibly completing.
 */
export const CANCEL_WAIT_MS = 5_000;

const NEXT = 'see where things are (outbox-relay status, slot list, publication show), then run the command again if it is still needed';

/** How the command's statement under way ended: `message` for the error, `effect` for its fix. */
interface Outcome {
  message: string;
  effect: string;
  /** PostgreSQL accepted the cancel: whether it reached the statement, the command's error tells (failure()). */
  cancelSent?: boolean;
}

/** The statement ended because PostgreSQL cancelled it (SQLSTATE 57014), as the command's error says. */
function cancelledByPostgres(err: unknown): boolean {
  for (let e = err as { code?: unknown; details?: { sqlstate?: unknown }; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.code === '57014' || e.details?.sqlstate === '57014') return true;
  }
  return false;
}

/**
 * SIGINT/SIGTERM during an operator command (slot create, setup, slot advance, …). With Node's default the
 * process ended at once, exit 130 or 143 and not a line, and PostgreSQL did not notice the closed connection until
 * its statement ended: a `slot create` waiting for an open transaction (a new slot waits for every one) created the
 * slot once that transaction committed, a slot the operator believed abandoned, holding WAL from then on. So the
 * first signal cancels the statement under way (pg_cancel_backend from a second connection, as psql's Ctrl-C
 * cancels it), waits for it to end (up to CANCEL_WAIT_MS) and then ends the command's connection, so that no
 * statement after it runs; the command fails with INTERRUPTED. Before the command's connection is open (also for a signal received while the bin was loading,
 * cli/early-signals.ts) nothing has run: it exits at once, as it does on a second signal.
 */
export class OpsInterrupt {
  /** Removes its signal listeners (the command is done). */
  readonly remove: () => void;
  private client: pg.Client | undefined;
  /** The command's latest statement, settled either way: what a cancel waits for before the connection ends. */
  private latest: Promise<void> = Promise.resolve();
  /** A statement of the command's ended cancelled (57014) after the signal: the cancel reached it. */
  private cancelReached = false;
  /** The first signal, and how the statement under way ended. */
  private interrupted: { signal: NodeJS.Signals; outcome: Promise<Outcome> } | undefined;
  private readonly stopped = new AbortController();
  /**
   * Aborted at the first signal once the connection is open: what the command waits for besides PostgreSQL (status's
   * read of the checkpoint topic, which librdkafka ends only at its timeout) is given up on, and the command fails
   * with the INTERRUPTED error failure() makes.
   */
  readonly signal = this.stopped.signal;

  /** `command`: its name as typed (`slot create`), for the messages; `json`: the command prints its error as JSON. */
  constructor(
    private readonly command: string,
    private readonly postgres: pg.ClientConfig,
    private readonly json: boolean,
  ) {
    this.remove = onStopSignals(this.onSignal);
  }

  /**
   * The command's connection, once it is open: from then on a signal cancels its statement, and no statement is
   * sent after the signal. The cancel takes a second connection's round trips, and ending this one only drops the
   * socket: a command that went on after its cancelled statement (slot advance's preview count fails softly) sent
   * pg_replication_slot_advance in that time, and PostgreSQL ran it.
   */
  attach(client: pg.Client): void {
    this.client = client;
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    client.query = ((...args: unknown[]) => {
      if (this.interrupted) return Promise.reject(new RelayError('INTERRUPTED', `${this.command}: not sent, a ${this.interrupted.signal} came before it`));
      const result = query(...args);
      // Seen here, not in the command's error: a command may go on past a failed statement (slot advance's
      // preview count), and then fails with the refusal above.
      if (result instanceof Promise) this.latest = result.then(() => undefined, (err: unknown) => void (this.interrupted && cancelledByPostgres(err) && (this.cancelReached = true)));
      return result;
    }) as typeof client.query;
  }

  /**
   * What the command failed with: INTERRUPTED once a signal came (the failure of a cancelled or closed connection
   * is its consequence, not a finding), else `err` itself.
   */
  async failure(err: unknown): Promise<unknown> {
    if (!this.interrupted) return err;
    let outcome = await this.interrupted.outcome;
    // The statement ended before the cancel reached it: it is done, the next one was not sent.
    if (outcome.cancelSent && !this.cancelReached && !cancelledByPostgres(err)) outcome = { message: 'the statement under way completed before the cancel reached it', effect: 'it and the statements before it stay done, none ran after it' };
    return this.error(this.interrupted.signal, outcome, err);
  }

  private readonly onSignal = (signal: NodeJS.Signals): void => {
    if (this.interrupted) this.exit(signal, { message: 'a second signal: exiting without waiting for PostgreSQL', effect: 'a statement under way may still complete' });
    const client = this.client;
    if (client === undefined) this.exit(signal, { message: 'before its first statement', effect: 'nothing was done' });
    // pg_cancel_backend is true for any live backend, an idle one too: whether a statement was under way is pg's
    // (an internal: should a pg release drop it, a statement is taken to be under way, as before).
    const active = (client as unknown as { _getActiveQuery?(): unknown })._getActiveQuery;
    const underWay = typeof active !== 'function' || active.call(client) != null;
    this.interrupted = { signal, outcome: underWay ? this.cancel(client) : this.close(client, { message: 'no statement was under way', effect: 'statements before the signal stay done, none ran after it' }) };
    this.stopped.abort();
  };

  private exit(signal: NodeJS.Signals, outcome: Outcome): never {
    exitInterrupted(this.error(signal, outcome), this.json);
  }

  private async cancel(client: pg.Client): Promise<Outcome> {
    // pg sets it from the server's BackendKeyData; its types do not declare it.
    const pid = (client as unknown as { processID: number }).processID;
    let outcome: Outcome;
    try {
      const { rows } = await withClient(this.postgres, 'the cancel of the interrupted statement', (side) => side.query<{ cancelled: boolean }>('SELECT pg_cancel_backend($1) AS cancelled', [pid]));
      if (!rows[0]?.cancelled) outcome = { message: 'the cancel did not reach the statement under way (its connection had ended)', effect: 'statements before the signal stay done, none ran after it' };
      else if (await settlesWithin(this.latest, CANCEL_WAIT_MS)) outcome = { message: 'PostgreSQL cancelled the statement under way', effect: 'statements before it stay done, the cancelled one took no effect', cancelSent: true };
      else outcome = { message: `PostgreSQL accepted the cancel, but the statement under way had not ended ${CANCEL_WAIT_MS / 1000} s later`, effect: 'statements before it stay done, and PostgreSQL may still complete it' };
    } catch (err) {
      outcome = { message: `the statement under way could not be cancelled (${errorMessage(err)})`, effect: 'statements before it stay done, and PostgreSQL may still complete it' };
    }
    return this.close(client, outcome);
  }

  private async close(client: pg.Client, outcome: Outcome): Promise<Outcome> {
    // The command exits with the outcome next: the interrupted connection's end has nothing to add.
    await client.end().catch(() => undefined);
    return outcome;
  }

  private error(signal: NodeJS.Signals, outcome: Outcome, cause?: unknown): RelayError {
    return interruptedError(this.command, signal, { ...outcome, effect: `${outcome.effect}: ${NEXT}` }, cause);
  }
}

function interruptedError(command: string, signal: NodeJS.Signals, outcome: Outcome, cause?: unknown): RelayError {
  return new RelayError('INTERRUPTED', `${command} interrupted by ${signal}: ${outcome.message}`, { cause, hint: outcome.effect });
}

function exitInterrupted(error: RelayError, json: boolean): never {
  reportError(error, json);
  return exitNow(EXIT.runtime);
}

/**
 * For a command whose statements so far only read (replay, until its relay runs): a stop signal ends it at once,
 * exit 1 with one INTERRUPTED error whose fix is `next`, where Node's default ended it with no line. Returns what
 * removes the listener; the command's own handlers must be installed before it is removed, so that no signal meets
 * Node's default in between.
 */
export function exitOnStopSignals(command: string, json: boolean, next: string): () => void {
  return onStopSignals((signal) => exitInterrupted(interruptedError(command, signal, { message: 'before it started', effect: `nothing was done: ${next}` }), json));
}
