import { describe, expect, it } from 'vitest';
import { describeProfile, summarizeProfile } from '../../bench/cpu-profile.js';

const frame = (functionName: string, url = '') => ({ functionName, url, lineNumber: 0 });

describe("the bench's summary of a relay CPU profile", () => {
  it('ranks self time as shares of the busy time, names V8 pseudo-frames in words, and reports idle apart', () => {
    const profile = {
      nodes: [
        { id: 1, callFrame: frame('(idle)') },
        { id: 2, callFrame: frame('produceBatches', 'file:///app/dist/sink/rdkafka-produce.js') },
        { id: 3, callFrame: frame('(garbage collector)') },
        { id: 4, callFrame: frame('map', 'file:///app/dist/route/row-mapper.js') },
        { id: 5, callFrame: frame('', 'node:internal/buffer') },
      ],
      // 200 µs idle, then 300 + 100 µs produce, 200 µs GC, 100 µs map, 100 µs anonymous: 800 µs busy.
      samples: [1, 2, 2, 3, 4, 5],
      timeDeltas: [200, 300, 100, 200, 100, 100],
    };
    const summary = summarizeProfile(profile, 3);
    expect(summary.idleShare).toBe(0.2);
    expect(summary.top).toEqual([
      { item: 'produceBatches (sink/rdkafka-produce.js)', share: 0.5 },
      { item: 'garbage collection', share: 0.25 },
      { item: 'map (route/row-mapper.js)', share: 0.125 },
    ]);
    expect(describeProfile(summary)).toBe('produceBatches (sink/rdkafka-produce.js) 50 %, garbage collection 25 %, map (route/row-mapper.js) 13 % of its busy time (idle 20 % of the run)');
  });
});
