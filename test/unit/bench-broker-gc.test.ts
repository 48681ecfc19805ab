import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { brokerGcPauses } from '../../bench/broker-gc.js';

// Lines as Java 17 writes them with -Xlog:gc:file=…:timemillis (G1, the bench broker's collector).
const LOG = `[1796116230236ms] Using G1
[1796116230281ms] GC(0) Pause Young (Normal) (G1 Evacuation Pause) 6M->6M(64M) 5.965ms
[1796116230295ms] GC(3) Pause Full (System.gc()) 20M->20M(64M) 3.433ms
[1796116230313ms] GC(6) Concurrent Mark Cycle
[1796116230316ms] GC(6) Concurrent Mark Cycle 43.541ms
[1796116230319ms] GC(8) Pause Young (Normal) (G1 Evacuation Pause) 30M->30M(64M) 11.987ms
[1796116230405ms] GC(9) Pause Young (Allocation Failure) 17M->16M(61M) 2.386ms
`;

describe("the bench's reading of the broker's GC log", () => {
  it('takes the stop-the-world pauses that ended within the span, not the concurrent phases', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gc-'));
    const log = join(dir, 'gc.log');
    writeFileSync(log, LOG);
    expect(brokerGcPauses(log, 1796116230290, 1796116230400)).toEqual({ count: 2, longestMs: 11.987, totalMs: 3.433 + 11.987 });
    expect(brokerGcPauses(log, 0, Number.MAX_SAFE_INTEGER)?.count).toBe(4);
    expect(brokerGcPauses(log, 1796116230500, 1796116230600)).toEqual({ count: 0, longestMs: 0, totalMs: 0 });
    expect(brokerGcPauses(join(log, 'missing'), 0, 1)).toBeUndefined();
    expect(brokerGcPauses(undefined, 0, 1)).toBeUndefined();
    rmSync(dir, { recursive: true });
  });
});
