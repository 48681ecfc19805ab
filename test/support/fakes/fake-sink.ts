import type { Checkpoint } from '../../../src/checkpoint/checkpoint.js';
import { RelayError } from '../../../src/errors.js';
import type { AfterAbort, PlainSink, SinkRecord, TransactionalSink } from '../../../src/sink/sink.js';

/** A promise whose outcome the test decides. */
export interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

export function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export function kafkaDown(): RelayError {
  return new RelayError('KAFKA_UNAVAILABLE', 'broker not reachable (fake)', { retriable: true });
}

/** Kafka fenced the transactional producer: another instance registered its transactional id. */
export function fenced(): RelayError {
  return new RelayError('PRODUCER_FENCED', 'fenced (fake)');
}

export interface SendCall {
  ids: string[];
  /** Settles this call; until then it is in flight. Ignored when the call was answered by a script step. */
  answer: Deferred;
}

type Step = 'ok' | 'hang' | RelayError;

/**
 * A broker stand-in with a log: `written` holds every record id Kafka accepted (what a read_uncommitted consumer
 * sees, duplicates included); with transactions, `visible` holds what committed transactions made visible (what
 * a read_committed consumer sees). Each call takes the next scripted step (default 'ok'); 'hang' leaves the call
 * to the test (`calls[i].answer`), which decides whether it was written.
 */
export class FakeSink implements TransactionalSink, PlainSink {
  readonly calls: SendCall[] = [];
  readonly written: string[] = [];
  readonly visible: string[] = [];
  readonly commits: Checkpoint[] = [];
  /** How many records were visible after each commit: where the commits fell in the stream. */
  readonly visibleAtCommits: number[] = [];
  aborts = 0;
  /**
   * What each abort call said follows it: a produce of the session, or only a claim (the producer may be let go).
   * Asked as the real sinks ask it, once the abort's outcome is known (a 'hang' step's: when the test settles it).
   */
  readonly abortsThen: AfterAbort[] = [];
  /** What checkLeaders answers: 'ok' (every partition led) or the error; each call's topics in `leaderChecks`. */
  leaders: 'ok' | RelayError = 'ok';
  readonly leaderChecks: string[][] = [];
  /** What checkTopics answers per topic (absent: it exists); each call's topics in `topicChecks`. */
  readonly topicAnswers = new Map<string, RelayError>();
  readonly topicChecks: string[][] = [];
  /** When set, checkTopics answers only once it resolves. */
  topicGate: Deferred | undefined;
  /** As the real sinks' topic check: known once checkTopics found it, forgotten when a send was refused as missing. */
  protected readonly knownTopics = new Set<string>();
  connects = 0;
  claims = 0;
  /** What the check of a producer lost while idle answers (loseProducer); how many were asked in `lostChecks`. */
  lostCheck: 'ok' | RelayError = 'ok';
  lostChecks = 0;
  private lost: ((error: RelayError, check: () => Promise<void>) => void) | undefined;
  /** What the open transaction holds: written, visible at its commit. */
  protected open: string[] = [];
  private readonly sendSteps: Step[] = [];
  private readonly commitSteps: (Step | 'ambiguous')[] = [];
  private readonly abortSteps: Step[] = [];
  pendingCommit: Deferred | undefined;
  pendingAbort: Deferred | undefined;

  constructor(readonly pipelineDepth = 1) {}

  /** The next send calls answer these steps, in order. */
  scriptSends(...steps: Step[]): this {
    this.sendSteps.push(...steps);
    return this;
  }

  scriptCommits(...steps: (Step | 'ambiguous')[]): this {
    this.commitSteps.push(...steps);
    return this;
  }

  scriptAborts(...steps: Step[]): this {
    this.abortSteps.push(...steps);
    return this;
  }

  async connect(): Promise<void> {
    this.connects++;
  }

  async claim(): Promise<void> {
    this.claims++;
  }

  send(records: readonly SinkRecord[]): Promise<void> {
    const ids = records.map((r) => r.key!.toString());
    const answer = deferred();
    this.calls.push({ ids, answer });
    // As the real sinks: a topic is checked before the records are handed over, and a refusal fails the call.
    const refused = records.map((r) => this.topicAnswers.get(r.topic)).find((error) => error !== undefined);
    if (refused) {
      if (refused.code === 'TOPIC_NOT_FOUND') for (const r of records) this.knownTopics.delete(r.topic);
      return Promise.reject(refused);
    }
    const step = this.sendSteps.shift() ?? 'ok';
    this.fencedBy(step);
    if (step === 'ok') this.accept(ids);
    else if (step !== 'hang') return Promise.reject(step);
    if (step === 'ok') return Promise.resolve();
    return answer.promise.then(() => this.accept(ids));
  }

  /** Kafka wrote the records of call `i` (an answer the relay may or may not receive). */
  accept(ids: string[]): void {
    this.written.push(...ids);
    this.open.push(...ids);
  }

  commit(checkpoint: Checkpoint): Promise<void> {
    const step = this.commitSteps.shift() ?? 'ok';
    this.fencedBy(step);
    if (step === 'hang') {
      this.pendingCommit = deferred();
      return this.pendingCommit.promise.then(() => this.commitNow(checkpoint));
    }
    if (step === 'ok' || step === 'ambiguous') this.commitNow(checkpoint);
    if (step === 'ok') return Promise.resolve();
    return Promise.reject(step === 'ambiguous' ? kafkaDown() : step);
  }

  /** A fenced producer's open transaction was aborted by the instance that fenced it. */
  private fencedBy(step: Step | 'ambiguous'): void {
    if (step instanceof RelayError && step.code === 'PRODUCER_FENCED') this.open = [];
  }

  private commitNow(checkpoint: Checkpoint): void {
    this.commits.push(checkpoint);
    this.visible.push(...this.open);
    this.visibleAtCommits.push(this.visible.length);
    this.open = [];
  }

  abort(next: () => AfterAbort): Promise<void> {
    const step = this.abortSteps.shift() ?? 'ok';
    if (step === 'hang') {
      this.pendingAbort = deferred();
      return this.pendingAbort.promise.then(
        () => {
          this.abortsThen.push(next());
          this.abortNow();
        },
        (err: unknown) => {
          this.abortsThen.push(next());
          throw err;
        },
      );
    }
    this.abortsThen.push(next());
    if (step !== 'ok') return Promise.reject(step);
    this.abortNow();
    return Promise.resolve();
  }

  private abortNow(): void {
    this.aborts++;
    this.open = [];
  }

  watchLost(lost: (error: RelayError, check: () => Promise<void>) => void): void {
    this.lost = lost;
  }

  /** The producer failed with no send to report it (the brokers refused it an id): delivery is told, as the rdkafka sink tells it. */
  loseProducer(error: RelayError): void {
    this.lost?.(error, async () => {
      this.lostChecks++;
      if (this.lostCheck !== 'ok') throw this.lostCheck;
    });
  }

  async checkLeaders(topics: Iterable<string>): Promise<void> {
    this.leaderChecks.push([...topics]);
    if (this.leaders !== 'ok') throw this.leaders;
  }

  async checkTopics(topics: Iterable<string>): Promise<void> {
    const asked = [...topics];
    this.topicChecks.push(asked);
    await this.topicGate?.promise;
    for (const topic of asked) {
      const answer = this.topicAnswers.get(topic);
      if (answer) throw answer;
      this.knownTopics.add(topic);
    }
  }

  knowsTopic(topic: string): boolean {
    return this.knownTopics.has(topic);
  }

  async close(): Promise<void> {}
}
