import { readFileSync, readdirSync } from 'node:fs';

/** Linux reports CPU time in clock ticks of 1/100 s (USER_HZ) on every architecture node runs on. */
const TICKS_PER_SECOND = 100;

/**
 * A `/proc/.../stat` file, of a process (all its threads) or of one thread: its name and the user + system CPU
 * seconds it used so far; undefined once it is gone.
 */
function readStat(path: string): { name: string; seconds: number } | undefined {
  let stat: string;
  try {
    stat = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  // The name (field 2, in parentheses) may hold spaces and parentheses: count fields after its last ')'.
  const end = stat.lastIndexOf(')');
  const fields = stat.slice(end + 2).split(' ');
  return { name: stat.slice(stat.indexOf('(') + 1, end), seconds: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND };
}

/** User + system CPU seconds a process used so far, or undefined once it is gone. */
export function processCpuSeconds(pid: number): number | undefined {
  return readStat(`/proc/${pid}/stat`)?.seconds;
}

/** The groups a relay's threads are reported in, in this order. */
export const THREAD_GROUPS = ['main thread', 'librdkafka', 'V8 workers', 'libuv pool', 'other threads'] as const;
export type ThreadGroup = (typeof THREAD_GROUPS)[number];

/**
 * A thread's group, by its id and the name the kernel shows for it: the main thread (JavaScript, the event loop,
 * the native calls it makes) has the process's id; librdkafka names its threads `rdk:main`, `rdk:broker<id>`,
 * `rdk:bg`; V8's garbage-collection and compiler helpers run on `V8Worker` (`V8 DefaultWorke` before Node 22).
 */
export function threadGroup(pid: number, tid: number, name: string): ThreadGroup {
  if (tid === pid) return 'main thread';
  if (name.startsWith('rdk:')) return 'librdkafka';
  if (name.startsWith('V8')) return 'V8 workers';
  if (name.startsWith('libuv')) return 'libuv pool';
  return 'other threads';
}

/** `read` of each thread a process has now, by thread id; empty once the process is gone. */
function perThread<T>(pid: number, read: (tid: number) => T | undefined): Map<number, T> {
  const threads = new Map<number, T>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return threads;
  }
  for (const tid of tids.map(Number)) {
    // Undefined when the thread ended meanwhile.
    const value = read(tid);
    if (value !== undefined) threads.set(tid, value);
  }
  return threads;
}

/** CPU seconds of each thread a process has now, by thread id, with its group; empty once the process is gone. */
function threadCpuSeconds(pid: number): Map<number, { group: ThreadGroup; seconds: number }> {
  return perThread(pid, (tid) => {
    const stat = readStat(`/proc/${pid}/task/${tid}/stat`);
    return stat && { group: threadGroup(pid, tid, stat.name), seconds: stat.seconds };
  });
}

/** CPU seconds used so far by the threads of a process whose kernel name starts with `prefix` (`rdk:broker`). */
export function namedThreadsCpuSeconds(pid: number, prefix: string): number {
  let total = 0;
  for (const stat of perThread(pid, (tid) => readStat(`/proc/${pid}/task/${tid}/stat`)).values()) if (stat.name.startsWith(prefix)) total += stat.seconds;
  return total;
}

/**
 * Seconds a thread spent runnable but waiting for a core so far: the second field of `/proc/.../schedstat`, in
 * nanoseconds (the kernel's run-queue delay). Undefined once the thread is gone, or on a kernel built without
 * scheduler statistics.
 */
export function parseRunQueueWait(schedstat: string): number | undefined {
  const waited = Number(schedstat.trim().split(/\s+/)[1]);
  return Number.isFinite(waited) ? waited / 1e9 : undefined;
}

/** Run-queue wait of each thread a process has now, by thread id; empty once the process is gone. */
function threadWaits(pid: number): Map<number, number> {
  return perThread(pid, (tid) => {
    try {
      return parseRunQueueWait(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8'));
    } catch {
      return undefined;
    }
  });
}

/**
 * CPU seconds the whole machine spent busy (all cores, everything but idle and iowait), and of it stolen: time a
 * virtual machine's cores waited while the hypervisor ran something else.
 */
function machineSeconds(): { busy: number; steal: number } {
  const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = ticks.map(Number) as number[];
  return { busy: (user! + nice! + system! + irq! + softirq! + steal!) / TICKS_PER_SECOND, steal: steal! / TICKS_PER_SECOND };
}

/** One process's CPU during a measurement: seconds, and share in cores (1 = one core busy all along). */
export interface ProcessCpu {
  process: string;
  seconds: number;
  cores: number;
  /**
   * Of it, per thread group (THREAD_GROUPS order), for a process tracked by thread: whether one thread, the
   * relay's main thread, was the one busy. A thread that ended between two readings misses its last ones.
   */
  threads?: { group: ThreadGroup; cores: number; waitedCores?: number }[];
  /**
   * Seconds its threads spent runnable but waiting for a core, per second of the measurement (summed over threads,
   * so it may exceed 1: the average number of its threads kept waiting). Read at the start and the end only, so a
   * thread that ended meanwhile is missing. Absent in older results.
   */
  waitedCores?: number;
}

export interface CpuReport {
  wallSeconds: number;
  /** Cores the whole machine kept busy on average, whoever used them. */
  machineCores: number;
  processes: ProcessCpu[];
  /** Busy cores not accounted to the tracked processes: the bench itself, other work on the machine. */
  otherCores: number;
  /** Of the busy cores, those the hypervisor took (steal time): a virtual machine's host was busy elsewhere. Absent in older results. */
  stealCores?: number;
}

/** A thread's CPU seconds at the meter's start (0 for one that started later) and at its latest reading. */
interface ThreadReading {
  group: ThreadGroup;
  base: number;
  last: number;
}

/**
 * CPU shares of named processes over one measurement, read from /proc, so that "who used the cores" during a
 * drain is a measured fact. A process may join late (the walsender appears when the client connects) and
 * leave early; its last reading counts. `fromStart` processes are counted from their own start (they were
 * spawned for this measurement), the others from the meter's start. How long each process's threads waited for
 * a core (the run-queue delay) is read at its start and at finish(), not in sample(): the broker has a hundred
 * threads, and the drains sample every 50 ms.
 */
export class CpuMeter {
  private readonly startedAt = performance.now();
  private readonly machineAtStart = machineSeconds();
  private readonly tracked = new Map<string, { pid: number; base: number; last: number; threads?: Map<number, ThreadReading>; waitBase: Map<number, number> }>();

  /** `byThread`: also per thread group (the relay: is its main thread the one that is busy?). */
  track(name: string, pid: number | undefined, fromStart = false, byThread = false): void {
    if (pid === undefined || this.tracked.get(name)?.pid === pid) return;
    const now = processCpuSeconds(pid);
    if (now === undefined) return;
    const threads = byThread ? new Map([...threadCpuSeconds(pid)].map(([tid, t]) => [tid, { group: t.group, base: fromStart ? 0 : t.seconds, last: t.seconds }])) : undefined;
    // A thread that starts later is counted from its own start (base 0), as for CPU.
    const waitBase = fromStart ? new Map<number, number>() : threadWaits(pid);
    this.tracked.set(name, { pid, base: fromStart ? 0 : now, last: now, ...(threads ? { threads } : {}), waitBase });
  }

  /** Takes a reading of every tracked process; call it before a process exits. */
  sample(): void {
    for (const t of this.tracked.values()) {
      // Threads before the process (and the reverse in track()): the reads are not atomic, and in this order what
      // ran between them counts for the process, never for its threads alone, so the threads never add up to more.
      const threads = t.threads;
      if (threads) {
        for (const [tid, now] of threadCpuSeconds(t.pid)) {
          const thread = threads.get(tid);
          // A thread started after the first reading is counted from its own start.
          if (thread) thread.last = now.seconds;
          else threads.set(tid, { group: now.group, base: 0, last: now.seconds });
        }
      }
      t.last = processCpuSeconds(t.pid) ?? t.last;
    }
  }

  finish(): CpuReport {
    this.sample();
    const wallSeconds = (performance.now() - this.startedAt) / 1000;
    const processes = [...this.tracked].map(([process, t]) => {
      // Per thread id, the seconds it waited for a core during the measurement; empty once the process is gone.
      const waited = new Map([...threadWaits(t.pid)].map(([tid, now]) => [tid, now - (t.waitBase.get(tid) ?? 0)]));
      const waitedCores = waited.size === 0 ? undefined : [...waited.values()].reduce((sum, w) => sum + w, 0) / wallSeconds;
      const byGroup = (threads: Map<number, ThreadReading>) =>
        THREAD_GROUPS.map((group) => {
          const inGroup = [...threads].filter(([, r]) => r.group === group);
          const cores = inGroup.reduce((sum, [, r]) => sum + r.last - r.base, 0) / wallSeconds;
          return { group, cores, ...(waitedCores === undefined ? {} : { waitedCores: inGroup.reduce((sum, [tid]) => sum + (waited.get(tid) ?? 0), 0) / wallSeconds }) };
        }).filter((g) => g.cores > 0);
      return { process, seconds: t.last - t.base, cores: (t.last - t.base) / wallSeconds, ...(t.threads ? { threads: byGroup(t.threads) } : {}), ...(waitedCores === undefined ? {} : { waitedCores }) };
    });
    const machine = machineSeconds();
    const machineCores = (machine.busy - this.machineAtStart.busy) / wallSeconds;
    const stealCores = (machine.steal - this.machineAtStart.steal) / wallSeconds;
    return { wallSeconds, machineCores, processes, otherCores: Math.max(0, machineCores - processes.reduce((s, p) => s + p.cores, 0)), stealCores };
  }
}

/**
 * Who used the cores, e.g. "1.9 of 2 cores busy: relay 0.8 (main thread 0.6, librdkafka 0.2), walsender 0.5, broker
 * 0.4, other 0.2", and steal time when the hypervisor took a measurable share (it is counted in "other"); then
 * how long each process's threads waited for a core, in the same unit, e.g. "; waiting for a core: relay 0.5 (main
 * thread 0.3), walsender 0.2, broker 1.1": on a machine whose cores were all busy, who was kept waiting.
 */
export function cpuShares(cpu: CpuReport, cores: number): string {
  const threads = (p: ProcessCpu, of: (t: NonNullable<ProcessCpu['threads']>[number]) => number | undefined) => {
    const shown = (p.threads ?? []).flatMap((t) => {
      const value = of(t);
      return value !== undefined && value >= 0.005 ? [`${t.group} ${value.toFixed(2)}`] : [];
    });
    return shown.length === 0 ? '' : ` (${shown.join(', ')})`;
  };
  const parts = [...cpu.processes.map((p) => `${p.process} ${p.cores.toFixed(2)}${threads(p, (t) => t.cores)}`), `other ${cpu.otherCores.toFixed(2)}`];
  const steal = cpu.stealCores !== undefined && cpu.stealCores >= 0.005 ? ` (of it stolen by the hypervisor ${cpu.stealCores.toFixed(2)})` : '';
  const waiting = cpu.processes.flatMap((p) => (p.waitedCores === undefined ? [] : [`${p.process} ${p.waitedCores.toFixed(2)}${threads(p, (t) => t.waitedCores)}`]));
  return `${cpu.machineCores.toFixed(2)} of ${cores} cores busy: ${parts.join(', ')}${steal}${waiting.length === 0 ? '' : `; waiting for a core: ${waiting.join(', ')}`}`;
}
