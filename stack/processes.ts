import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runDir, stackRoot } from './paths.js';

/**
 * Every server the stack starts gets a pidfile under `<stack>/pids/`. Control goes through the pidfile, not
 * a ChildProcess handle, so a test worker can kill or restart a server that the global setup started, and a
 * later run can reap what a crashed run left behind.
 */
function pidDir(dir = runDir()): string {
  const pids = join(dir, 'pids');
  mkdirSync(pids, { recursive: true });
  const owner = join(dir, 'owner');
  if (!existsSync(owner)) writeFileSync(owner, String(process.pid));
  return pids;
}

/** Whether `tool` is a command on PATH: the stack names the package to install when it is not. */
export function onPath(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

export function writePid(name: string, pid: number): void {
  writeFileSync(join(pidDir(), `${name}.pid`), String(pid));
}

export function readPid(name: string): number | undefined {
  const file = join(pidDir(), `${name}.pid`);
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export function forgetPid(name: string): void {
  rmSync(join(pidDir(), `${name}.pid`), { force: true });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers signal 0; it is dead for our purposes.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return true;
  }
}

export async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number, stepMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, stepMs));
  }
  const detail = lastError instanceof Error ? `: ${lastError.message}` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
}

/** Sends `signal`, then waits for the process to be gone; escalates to SIGKILL after `graceMs`. */
export async function stopPid(pid: number, signal: NodeJS.Signals = 'SIGTERM', graceMs = 15_000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  try {
    await waitUntil(`pid ${pid} to exit`, () => !isAlive(pid), graceMs, 50);
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone between the check and the kill */
    }
    await waitUntil(`pid ${pid} to exit after SIGKILL`, () => !isAlive(pid), 5_000, 50);
  }
  // Exited, it is a zombie until its parent (this process, when it spawned it) reaps it, and a zombie still answers
  // signal 0: a PostgreSQL started at once on the same data directory took it for a running postmaster ("lock file
  // postmaster.pid already exists", measured in CI after a SIGKILL) and exited, and the start waited out its bound.
  await waitUntil(`pid ${pid} to be reaped`, () => reaped(pid), 5_000, 20).catch(() => undefined);
}

function reaped(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

/**
 * Sends SIGSTOP and waits until every thread of `pid` has stopped (state T in /proc). kill() returns before a
 * multi-threaded process has stopped: one of its threads must get a CPU to stop the others, and on a loaded host
 * the rest went on meanwhile (a Python thread wrote 40 ms after the kill at load 12). A broker frozen so
 * answered a produce request sent right after the kill, and the relay, with nothing left unanswered, had no hung
 * request to report (relay.outage's SIGSTOP test timed out waiting for its outage line).
 */
export async function freeze(pid: number): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  try {
    await waitUntil(`every thread of pid ${pid} to stop`, () => threadStates(pid).every((state) => state === 'T'), 10_000, 10);
  } catch (err) {
    // Left stopped, it would hang the tests after this one, which restart only servers that are gone.
    process.kill(pid, 'SIGCONT');
    throw err;
  }
}

/** The state letter of each thread of `pid` still listed in /proc (one that ended meanwhile is left out). */
function threadStates(pid: number): string[] {
  const states: string[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      states.push(/^\d+ \(.*\) (\S)/s.exec(readFileSync(`/proc/${pid}/task/${task}/stat`, 'utf8'))![1]!);
    } catch {
      // ended between the listing and the read
    }
  }
  return states;
}

export interface Spawned {
  child: ChildProcess;
  pid: number;
}

/** Starts a long-lived server detached from our process group, so Ctrl-C in a terminal reaches us first and we stop it in order. */
export function spawnServer(name: string, command: string, args: string[], options: SpawnOptions & { logFile: string }): Spawned {
  const { logFile, ...rest } = options;
  const out = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, { ...rest, detached: true, stdio: ['ignore', out, out] });
  } finally {
    closeSync(out);
  }
  if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
  child.unref();
  writePid(name, child.pid);
  return { child, pid: child.pid };
}

/** Pids of live processes whose command line mentions `marker` (our stack directory): the leak check. */
export function processesMentioning(marker: string): { pid: number; cmd: string }[] {
  const found: { pid: number; cmd: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    } catch {
      continue;
    }
    if (cmd.includes(marker) && isAlive(pid)) found.push({ pid, cmd });
  }
  return found;
}

/** Stops every server of a run (default: this one) whose pidfile is present. */
export async function stopAllTracked(dir = runDir()): Promise<void> {
  const pids = pidDir(dir);
  for (const file of readdirSync(pids)) {
    if (!file.endsWith('.pid')) continue;
    const pid = Number(readFileSync(join(pids, file), 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0) await stopPid(pid, 'SIGTERM');
    rmSync(join(pids, file), { force: true });
  }
}

/** Servers of runs whose owner process died (a killed test run, a Ctrl-C'd demo): stop them and remove their data. */
export async function reapOrphanedRuns(): Promise<void> {
  const root = stackRoot();
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const dir = join(root, entry.name);
    const ownerFile = join(dir, 'owner');
    const owner = existsSync(ownerFile) ? Number(readFileSync(ownerFile, 'utf8').trim()) : NaN;
    if (dir === runDir() || (Number.isInteger(owner) && isAlive(owner))) continue;
    if (!existsSync(join(dir, 'pids'))) continue;
    await stopAllTracked(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}
