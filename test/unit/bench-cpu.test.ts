import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CpuMeter, cpuShares, parseRunQueueWait, threadGroup, type CpuReport } from '../../bench/cpu.js';
import type { DrainResult } from '../../bench/drain.js';
import { drainBound } from '../../bench/targets.js';

describe("the bench's account of who used the cores", () => {
  const report: CpuReport = {
    wallSeconds: 10,
    machineCores: 1.9,
    processes: [
      { process: 'relay', seconds: 8, cores: 0.8 },
      { process: 'walsender', seconds: 5, cores: 0.5 },
    ],
    otherCores: 0.6,
  };

  it('names each process and the rest of the machine', () => {
    expect(cpuShares(report, 2)).toBe('1.90 of 2 cores busy: relay 0.80, walsender 0.50, other 0.60');
  });

  it('names the share the hypervisor stole when there is one, and only then', () => {
    expect(cpuShares({ ...report, stealCores: 0.12 }, 2)).toBe('1.90 of 2 cores busy: relay 0.80, walsender 0.50, other 0.60 (of it stolen by the hypervisor 0.12)');
    expect(cpuShares({ ...report, stealCores: 0.001 }, 2)).toBe('1.90 of 2 cores busy: relay 0.80, walsender 0.50, other 0.60');
  });

  it("splits a process tracked by thread into its thread groups, leaving out those that used next to nothing", () => {
    const threads = [
      { group: 'main thread' as const, cores: 0.6 },
      { group: 'librdkafka' as const, cores: 0.15 },
      { group: 'V8 workers' as const, cores: 0.05 },
      { group: 'libuv pool' as const, cores: 0.001 },
    ];
    const split = { ...report, processes: [{ ...report.processes[0]!, threads }, report.processes[1]!] };
    expect(cpuShares(split, 2)).toBe('1.90 of 2 cores busy: relay 0.80 (main thread 0.60, librdkafka 0.15, V8 workers 0.05), walsender 0.50, other 0.60');
  });

  it('then says how long each process, and each of its thread groups, waited for a core, where that was measured', () => {
    const waited = {
      ...report,
      processes: [
        { ...report.processes[0]!, waitedCores: 0.52, threads: [{ group: 'main thread' as const, cores: 0.6, waitedCores: 0.3 }, { group: 'librdkafka' as const, cores: 0.2, waitedCores: 0.001 }] },
        { ...report.processes[1]!, waitedCores: 0.25 },
      ],
    };
    expect(cpuShares(waited, 2)).toBe('1.90 of 2 cores busy: relay 0.80 (main thread 0.60, librdkafka 0.20), walsender 0.50, other 0.60; waiting for a core: relay 0.52 (main thread 0.30), walsender 0.25');
  });

  it("reads a thread's run-queue wait from the second field of its schedstat, in nanoseconds", () => {
    expect(parseRunQueueWait('1315000000 2519000000 20321\n')).toBe(2.519);
    expect(parseRunQueueWait('')).toBeUndefined();
  });

  it('measures the wait for a core from /proc: two busy processes pinned to one core each wait about as long as they run', async () => {
    // Each child says when its loop begins: under load Node's own start can take longer than a fixed wait, and a
    // child still starting (reading files, faulting pages in) is not runnable all the time, so it waited less.
    const busy = () => spawn('taskset', ['-c', '0', process.execPath, '-e', 'process.stdout.write("go\\n", () => { const end = Date.now() + 5000; while (Date.now() < end); });'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const children = [busy(), busy()];
    try {
      await Promise.all(children.map((child) => new Promise((r) => child.stdout!.once('data', r))));
      const meter = new CpuMeter();
      for (const [i, child] of children.entries()) meter.track(`busy${i}`, child.pid);
      await new Promise((r) => setTimeout(r, 1000));
      const cpu = meter.finish();
      for (const p of cpu.processes) {
        // Sharing one core, each ran at most half the time and waited the other half (more if anything else ran there).
        expect(p.cores).toBeLessThan(0.6);
        expect(p.waitedCores).toBeGreaterThan(0.3);
      }
      expect(cpu.processes).toHaveLength(2);
    } finally {
      for (const child of children) child.kill('SIGKILL');
    }
  });

  it("groups threads by the names Node, V8 and librdkafka give them, the main thread by its id", () => {
    expect(threadGroup(100, 100, 'MainThread')).toBe('main thread');
    expect(threadGroup(100, 100, 'node')).toBe('main thread');
    expect(threadGroup(100, 104, 'rdk:broker1')).toBe('librdkafka');
    expect(threadGroup(100, 105, 'rdk:bg')).toBe('librdkafka');
    expect(threadGroup(100, 101, 'V8Worker')).toBe('V8 workers');
    expect(threadGroup(100, 102, 'V8 DefaultWorke')).toBe('V8 workers');
    expect(threadGroup(100, 103, 'libuv-worker')).toBe('libuv pool');
    expect(threadGroup(100, 106, 'SignalInspector')).toBe('other threads');
  });

  it("measures a process's CPU by thread from /proc: this process's main thread, busy for 300 ms of CPU", () => {
    const meter = new CpuMeter();
    meter.track('self', process.pid, false, true);
    // Busy on this thread until the kernel counted 300 ms of CPU for it (CPU time, not wall time; this thread's own,
    // from /proc/thread-self: process.cpuUsage also counts the process's other threads, which on a loaded machine
    // took enough of the 300 ms that this thread's share fell below the bound).
    const threadTicks = () => {
      const stat = readFileSync('/proc/thread-self/stat', 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(fields[11]) + Number(fields[12]);
    };
    const start = threadTicks();
    while (threadTicks() - start < 30) Math.sqrt(Math.random());
    const cpu = meter.finish();
    const self = cpu.processes.find((p) => p.process === 'self')!;
    const main = self.threads?.find((t) => t.group === 'main thread');
    expect(main).toBeDefined();
    // Clock ticks of 10 ms, and other threads (V8's, vitest's) may have run meanwhile: the main thread had most of it.
    expect(main!.cores * cpu.wallSeconds).toBeGreaterThanOrEqual(0.2);
    const sum = self.threads!.reduce((s, t) => s + t.cores, 0);
    // The kernel rounds each thread's CPU time down to whole ticks on its own, and the process's once: the threads'
    // changes can add up to about a tick per thread more than the process's (4 ticks more came once, with the
    // suite's integration files on both cores; the bound was 3 then). Threads read before the process, as
    // CpuMeter does, add nothing to that. In CPU seconds, with room for floating-point rounding (a sum that equalled
    // the bound in ticks came out 2e-16 above it). Counting the busy main thread twice (0.3 s more) still fails it.
    const threads = readdirSync('/proc/self/task').length;
    expect(threads).toBeLessThan(25);
    expect(sum * cpu.wallSeconds).toBeLessThanOrEqual(self.cores * cpu.wallSeconds + 0.01 * threads + 1e-9);
  });
});

describe('the bound the bench names for a drain that missed its target', () => {
  const drain = (relay: CpuReport['processes'][number]): DrainResult =>
    ({
      client: 'rdkafka',
      seconds: 10,
      eventsPerSecond: 100_000,
      streamingEventsPerSecond: 104_000,
      windowFullShare: 0.1,
      cpu: { wallSeconds: 10, machineCores: 1.5, processes: [relay, { process: 'walsender', seconds: 4, cores: 0.4 }], otherCores: 0 },
    }) as DrainResult;

  it("is the relay's main thread when that thread was busy, as measured by thread", () => {
    const bound = drainBound(drain({ process: 'relay', seconds: 11, cores: 1.1, threads: [{ group: 'main thread', cores: 0.95 }, { group: 'librdkafka', cores: 0.15 }] }), 2, 120_000);
    expect(bound).toMatch(/^the relay's main thread \(1\.50 of 2 cores busy: relay 1\.10 \(main thread 0\.95, librdkafka 0\.15\)/);
  });

  it("is not the main thread when the process was busy but the main thread was not", () => {
    const bound = drainBound(drain({ process: 'relay', seconds: 11, cores: 1.1, threads: [{ group: 'main thread', cores: 0.7 }, { group: 'librdkafka', cores: 0.4 }] }), 2, 120_000);
    expect(bound).toMatch(/^neither CPU nor the relay's main thread is saturated/);
  });

  it('falls back on the whole process where it was not measured by thread (older results)', () => {
    expect(drainBound(drain({ process: 'relay', seconds: 11, cores: 1.1 }), 2, 120_000)).toMatch(/^the relay's main thread/);
  });
});
