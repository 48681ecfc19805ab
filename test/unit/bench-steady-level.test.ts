import { describe, expect, it } from 'vitest';
import type { CpuReport } from '../../bench/cpu.js';
import { medianSteady, nextTopRate, notSustained, type SteadyResult } from '../../bench/steady.js';
import { checkTargets, latencyBound } from '../../bench/targets.js';
import type { BenchResults } from '../../bench/types.js';

describe("the bench's highest sustained rate", () => {
  it('is a level the relay kept up with (p50 ≤ 50 ms) and whose writers committed at least 90 % of its rate', () => {
    expect(notSustained({ target: 30_000, achieved: 29_000, p50: 12 })).toBeUndefined();
    expect(notSustained({ target: 43_600, achieved: 35_943, p50: 64 })).toBe('not sustained: the relay fell behind (p50 64 ms)');
    expect(notSustained({ target: 37_100, achieved: 32_705, p50: 15 })).toBe('not held: the writers committed only 32,705 events/s');
  });

  it('steps down 15 %, from what the writers committed where they fell short of the rate', () => {
    // The relay fell behind at a rate the writers held: 15 % below that rate.
    expect(nextTopRate({ target: 43_600, achieved: 43_650 })).toBe(37_100);
    // The writers reached 40,664 of 71,100: 15 % below what they reached, not below a rate they never ran at.
    expect(nextTopRate({ target: 71_100, achieved: 40_664 })).toBe(34_600);
  });

  it('reports the median run and names every other run of the level that was not sustained', () => {
    // The top level of the run of 2026-12-02 05:17: its third run fell behind.
    const run = (p99: number, p50: number, achieved: number) => ({ target: 42_000, achieved, p50, p99, peakRssMiB: 117, cpuSecondsPer1k: 0.009 }) as SteadyResult;
    const median = medianSteady([run(458, 16, 41_925), run(170, 6, 41_998), run(748, 68, 36_094)]);
    expect(median.p99).toBe(458);
    expect(median.p99Runs).toEqual([458, 170, 748]);
    expect(median.shortRuns).toEqual([{ run: 3, why: 'not sustained: the relay fell behind (p50 68 ms)' }]);
    expect(medianSteady([run(458, 16, 41_925), run(170, 6, 41_998), run(300, 8, 41_990)]).shortRuns).toBeUndefined();
    const results = { defaultClient: 'rdkafka', machine: { cores: 2 }, shapes: [], steady: [{ ...median, client: 'rdkafka', sustainedMax: true }], coldStarts: [], helpStart: { medianMs: 143, runsMs: [143] } } as unknown as BenchResults;
    const latency = checkTargets(results).find((t) => t.target.startsWith('p99'))!;
    expect(latency.met).toBe(false);
    expect(latency.result).toMatch(/^max 42,000\/s: 458 ms \(runs: 458, 170, 748 ms; run 3 not sustained: the relay fell behind \(p50 68 ms\)\)/);
  });
});

describe('the bound the bench names for a missed tail', () => {
  const level = (over: Partial<SteadyResult>) => ({ target: 35_000, achieved: 34_089, p50: 6, p99: 307, sourceP99: 382, relayP99: 100, loopGapMs: 70, brokerGc: { longestMs: 24 }, ...over }) as SteadyResult;
  const busy = { wallSeconds: 15, machineCores: 1.95, otherCores: 1.02, processes: [{ process: 'relay', cores: 0.36 }, { process: 'bench', cores: 0.22 }] } as CpuReport;

  it("is the machine's CPU when its cores were busy, with the writers' share, and says where the tail formed", () => {
    expect(latencyBound(level({ cpu: busy }), 2)).toBe(
      "the machine's CPU (1.95 of 2 cores busy, 1.24 of them the writers with their PostgreSQL backends); the tail formed before PostgreSQL sent the transactions (p99 commit → sent above read → acknowledged)",
    );
  });

  it('says, with the waits measured, how long the relay, the walsender and the broker waited for a core per second they ran', () => {
    // The relay's main thread ran 0.24 cores and waited 0.46; the walsender 0.21 and 0.25; the broker 0.14 and 1.09.
    const waits = {
      ...busy,
      processes: [
        { process: 'relay', seconds: 5.4, cores: 0.36, waitedCores: 0.6, threads: [{ group: 'main thread', cores: 0.24, waitedCores: 0.46 }] },
        { process: 'walsender', seconds: 3.15, cores: 0.21, waitedCores: 0.25 },
        { process: 'broker', seconds: 2.1, cores: 0.14, waitedCores: 1.09 },
        { process: 'bench', seconds: 3.3, cores: 0.22, waitedCores: 0.3 },
      ],
    } as CpuReport;
    expect(latencyBound(level({ cpu: waits }), 2)).toBe(
      "the machine's CPU (1.95 of 2 cores busy, 1.24 of them the writers with their PostgreSQL backends; for each second on a core the relay's main thread waited 1.9 s for one, the walsender 1.2 s, the broker 7.8 s); the tail formed before PostgreSQL sent the transactions (p99 commit → sent above read → acknowledged)",
    );
  });

  it('names the wait for a core on a machine with cores to spare on average, where one of them waited at least as long as it ran', () => {
    // The 15,300 events/s level of a run of 2026-12-02 06:57 on a slow host: the relay's main thread ran 0.22 cores and waited 0.43.
    const level15k = {
      wallSeconds: 10,
      machineCores: 1.74,
      otherCores: 0.7,
      processes: [
        { process: 'relay', seconds: 3.8, cores: 0.38, waitedCores: 0.93, threads: [{ group: 'main thread', cores: 0.22, waitedCores: 0.43 }] },
        { process: 'walsender', seconds: 2.5, cores: 0.25, waitedCores: 0.26 },
        { process: 'broker', seconds: 2.1, cores: 0.21, waitedCores: 0.68 },
      ],
    } as CpuReport;
    expect(latencyBound(level({ cpu: level15k, sourceP99: 30, relayP99: 75 }), 2)).toBe(
      "the wait for a core (1.74 of 2 cores busy; for each second on a core the relay's main thread waited 2.0 s for one, the walsender 1.0 s, the broker 3.2 s); the tail formed between the relay's read and Kafka's acknowledgement (p99 read → acknowledged above commit → sent)",
    );
    const ranMore = { ...level15k, processes: level15k.processes.map((p) => ({ ...p, waitedCores: 0.01, threads: p.threads?.map((t) => ({ ...t, waitedCores: 0.01 })) })) };
    expect(latencyBound(level({ cpu: ranMore, sourceP99: 30, relayP99: 75 }), 2)).toMatch(/^the tail formed between/);
  });

  it("names a stall of the relay's main thread or the broker's GC as long as half the tail on a machine with cores to spare", () => {
    const spare = { ...busy, machineCores: 1.2 };
    expect(latencyBound(level({ cpu: spare, loopGapMs: 200, sourceP99: 50, relayP99: 290 }), 2)).toBe(
      "the relay's main thread (held up to 200 ms); the tail formed between the relay's read and Kafka's acknowledgement (p99 read → acknowledged above commit → sent)",
    );
    expect(latencyBound(level({ cpu: spare, brokerGc: { longestMs: 180 } as SteadyResult['brokerGc'] }), 2)).toMatch(/^the broker's GC \(paused up to 180 ms\); the tail formed before/);
    expect(latencyBound(level({ cpu: spare }), 2)).toMatch(/^the tail formed before PostgreSQL sent/);
    expect(latencyBound(level({ relayP99: undefined }), 2)).toBeUndefined();
  });
});
