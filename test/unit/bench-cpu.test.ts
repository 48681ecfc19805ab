import { describe, expect, it } from 'vitest';
import { cpuShares, type CpuReport } from '../../bench/cpu.js';

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
});
