import { readFileSync } from 'node:fs';

/** Linux reports CPU time in clock ticks of 1/100 s (USER_HZ) on every architecture node runs on. */
const TICKS_PER_SECOND = 100;

/** User + system CPU seconds a process used so far, or undefined once it is gone. */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
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

/**
 * CPU shares of named processes over one measurement, read from /proc, so that "who used the cores" during a
 * drain is a measured fact. A process may join late (the walsender appears when the client connects) and
 * leave early; its last reading counts. `fromStart` processes are counted from their own start (they were
 * spawned for this measurement), the others from the meter's start.
 */
export class CpuMeter {
  private readonly startedAt = performance.now();
  private readonly machineAtStart = machineSeconds();
  private readonly tracked = new Map<string, { pid: number; base: number; last: number }>();

  track(name: string, pid: number | undefined, fromStart = false): void {
    if (pid === undefined || this.tracked.get(name)?.pid === pid) return;
    const now = processCpuSeconds(pid);
    if (now === undefined) return;
    this.tracked.set(name, { pid, base: fromStart ? 0 : now, last: now });
  }

  /** Takes a reading of every tracked process; call it before a process exits. */
  sample(): void {
    for (const t of this.tracked.values()) t.last = processCpuSeconds(t.pid) ?? t.last;
  }

  finish(): CpuReport {
    this.sample();
    const wallSeconds = (performance.now() - this.startedAt) / 1000;
    const processes = [...this.tracked].map(([process, t]) => ({ process, seconds: t.last - t.base, cores: (t.last - t.base) / wallSeconds }));
    const machine = machineSeconds();
    const machineCores = (machine.busy - this.machineAtStart.busy) / wallSeconds;
    const stealCores = (machine.steal - this.machineAtStart.steal) / wallSeconds;
    return { wallSeconds, machineCores, processes, otherCores: Math.max(0, machineCores - processes.reduce((s, p) => s + p.cores, 0)), stealCores };
  }
}

/**
 * Who used the cores, e.g. "1.9 of 2 cores busy: relay 0.8, walsender 0.5, broker 0.4, other 0.2", and steal time
 * when the hypervisor took a measurable share (it is counted in "other").
 */
export function cpuShares(cpu: CpuReport, cores: number): string {
  const parts = [...cpu.processes.map((p) => `${p.process} ${p.cores.toFixed(2)}`), `other ${cpu.otherCores.toFixed(2)}`];
  const steal = cpu.stealCores !== undefined && cpu.stealCores >= 0.005 ? ` (of it stolen by the hypervisor ${cpu.stealCores.toFixed(2)})` : '';
  return `${cpu.machineCores.toFixed(2)} of ${cores} cores busy: ${parts.join(', ')}${steal}`;
}
