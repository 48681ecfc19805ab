import { describe, expect, it } from 'vitest';
import { ReplayBound } from '../../src/pipeline/replay-bound.js';

describe('ReplayBound: where a replay ends', () => {
  // replay --start-lsn at the WAL end of a server that writes nothing (the position the refusals' fixes name, when
  // everything was delivered): its range is empty, and an idle server's keepalives repeat the start, so the confirmed
  // position never passed the end. The replay streamed until something wrote WAL anywhere on the cluster.
  it('ends once it streams from past its last commit: an empty range', () => {
    let ended = 0;
    const bound = new ReplayBound(0x5000n, 0x4fffn, () => ended++);
    bound.observer.stateChanged!('streaming');
    expect(ended).toBe(1);
  });

  it('streams on from below its last commit, and ends once the confirmed position passes it, once', () => {
    let ended = 0;
    const bound = new ReplayBound(0x4f00n, 0x4fffn, () => ended++);
    bound.observer.stateChanged!('streaming');
    bound.observer.confirmed!(0x4fffn, undefined);
    expect(ended).toBe(0);
    bound.observer.confirmed!(0x5000n, undefined);
    bound.observer.stateChanged!('streaming');
    expect(ended).toBe(1);
  });
});
