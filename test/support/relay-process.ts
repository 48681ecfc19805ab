import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { repoRoot, waitUntil } from '../../stack/index.js';
import { cliArgs } from './relay-bin.js';

export interface LogLine {
  level: string;
  msg: string;
  [key: string]: unknown;
}

/**
 * The relay as users run it: the real CLI in a child process, JSON logs parsed line by line. Tests wait for
 * log lines and kill it with real signals.
 */
export class RelayProcess {
  readonly logs: LogLine[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor(args: string[], env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, cliArgs(args), {
      cwd: repoRoot,
      env: { ...process.env, OUTBOX_RELAY_HTTP_PORT: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      try {
        this.logs.push(JSON.parse(line) as LogLine);
      } catch {
        this.logs.push({ level: 'raw', msg: line });
      }
    });
    createInterface({ input: this.child.stderr! }).on('line', (line) => this.stderr.push(line));
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  get pid(): number {
    return this.child.pid!;
  }

  // 60 s: on a saturated 2-core machine a relay takes up to a minute from spawn to its first log line.
  async waitForLog(predicate: (line: LogLine) => boolean, timeoutMs = 60_000, what = 'log line'): Promise<LogLine> {
    let found: LogLine | undefined;
    await waitUntil(what, () => (found = this.logs.find(predicate)) !== undefined, timeoutMs, 50).catch((err: Error) => {
      throw new Error(`${err.message}\nlogs:\n${this.logs.map((l) => JSON.stringify(l)).join('\n')}\nstderr:\n${this.stderr.join('\n')}`);
    });
    return found!;
  }

  /** The exit code, once it exited; a relay still running after `timeoutMs` fails the test with its log (where it waits). */
  async exitCode(timeoutMs = 60_000): Promise<number | null> {
    const timedOut = Symbol('timed out');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([this.exited, new Promise<typeof timedOut>((resolve) => (timer = setTimeout(() => resolve(timedOut), timeoutMs)))]);
    clearTimeout(timer);
    if (code === timedOut) throw new Error(`the relay did not exit within ${timeoutMs} ms\n${this.dump()}`);
    return code;
  }

  waitForMessage(msg: string, timeoutMs?: number): Promise<LogLine> {
    return this.waitForLog((l) => l.msg === msg, timeoutMs, `"${msg}"`);
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** For assertions: every log line as text. */
  dump(): string {
    return this.logs.map((l) => JSON.stringify(l)).join('\n') + (this.stderr.length ? `\nstderr:\n${this.stderr.join('\n')}` : '');
  }
}

const running = new Set<RelayProcess>();
// Every relay this file started, in order: a failed test prints the logs of those it could have seen.
const started: RelayProcess[] = [];

export function startRelay(args: string[], env: Record<string, string> = {}): RelayProcess {
  const relay = new RelayProcess(args, env);
  running.add(relay);
  started.push(relay);
  void relay.exited.then(() => running.delete(relay));
  return relay;
}

const LOG_TAIL = 60;

/**
 * For the integration project's setup file: when a test fails, print the last lines of each relay it started
 * and of each relay started before it that was still running when it began. An assertion on Kafka's records or
 * the slot says what went wrong but not why; without the relay's log a failure seen once in a full suite could
 * not be explained (two such in CI before this existed).
 */
export function printRelayLogsOnFailure(onTestFailed: (fn: () => void) => void): void {
  const before = started.length;
  const alreadyRunning = started.filter((r) => running.has(r));
  onTestFailed(() => {
    const relays = [...alreadyRunning, ...started.slice(before)];
    for (const [i, relay] of relays.entries()) {
      const lines = relay.dump().split('\n');
      const cut = lines.length > LOG_TAIL ? `, the last ${LOG_TAIL} of ${lines.length} lines` : '';
      console.error(`relay ${i + 1} of ${relays.length} (pid ${relay.pid})${cut}:\n${lines.slice(-LOG_TAIL).join('\n')}`);
    }
  });
}

/** afterEach/afterAll: nothing of ours may outlive a test. */
export async function killAllRelays(): Promise<void> {
  await Promise.all([...running].map((r) => r.kill()));
}
