import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { repoRoot } from '../../stack/index.js';
import { cliArgs } from './relay-bin.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const TIMEOUT_MS = 30_000;

/**
 * The environment a test gives the CLI and nothing else of the kind: a developer's own DATABASE_URL, PG* or
 * OUTBOX_RELAY_* variables must not decide where a command connects.
 */
function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const inherited = Object.entries(process.env).filter(([k]) => !/^(OUTBOX_RELAY_|PG|DATABASE_URL$)/.test(k));
  return { ...Object.fromEntries(inherited), ...env };
}

/** Output and exit code of `child`, killed after TIMEOUT_MS. */
function finished(child: ChildProcess, what: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} did not finish in ${TIMEOUT_MS} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** One run of the real CLI in a child process (see cliArgs: the run's bundle of the source), as an operator runs it. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return startCli(args, env).result;
}

/** `runCli`, synchronously: for a command that needs nothing answered by this process meanwhile. */
export function runCliSync(args: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, cliArgs(args), { cwd: repoRoot, encoding: 'utf8', env: cleanEnv(env) });
}

/** `runCli` for a test that signals the command while it runs. */
export function startCli(args: string[], env: Record<string, string> = {}): { child: ChildProcess; result: Promise<CliResult> } {
  const child = spawn(process.execPath, cliArgs(args), { cwd: repoRoot, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  return { child, result: finished(child, `outbox-relay ${args.join(' ')}`) };
}

/** `runCli` for a command whose stdout is one JSON document. */
export async function runCliJson<T = Record<string, unknown>>(args: string[], env: Record<string, string> = {}): Promise<CliResult & { json: T }> {
  const result = await runCli([...args, '--json'], env);
  try {
    return { ...result, json: JSON.parse(result.stdout) as T };
  } catch {
    throw new Error(`outbox-relay ${args.join(' ')} --json did not print JSON (exit ${result.code})\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
  }
}


/** A shell word: `script` runs the command through a shell. */
function quoted(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * `runCli` with stdout and stderr on a terminal, as an operator at a shell sees them: util-linux `script` gives the
 * command a pseudo-terminal (both streams arrive merged in `stdout`, with CR LF line ends turned back into LF).
 */
export async function runCliOnTerminal(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const command = [process.execPath, ...cliArgs(args)].map(quoted).join(' ');
  const child = spawn('script', ['--quiet', '--return', '--command', command, '/dev/null'], { cwd: repoRoot, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  const result = await finished(child, `outbox-relay ${args.join(' ')} (on a terminal)`);
  return { ...result, stdout: result.stdout.replace(/\r\n/g, '\n') };
}
