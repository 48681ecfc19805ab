import { describe, expect, it } from 'vitest';
import { combineObservers, type RelayObserver } from '../../src/pipeline/observer.js';

describe('combineObservers', () => {
  it('forwards every call to each observer that listens to it, with its own `this`', () => {
    const calls: string[] = [];
    class Recorder implements RelayObserver {
      constructor(private readonly name: string) {}
      stateChanged(state: string): void {
        calls.push(`${this.name}:state:${state}`);
      }
      walPosition(lsn: bigint): void {
        calls.push(`${this.name}:wal:${lsn}`);
      }
    }
    const retriesOnly: RelayObserver = { retrying: (code) => calls.push(`r:${code}`) };
    const combined = combineObservers(new Recorder('a'), retriesOnly, new Recorder('b'));
    combined.stateChanged?.('standby');
    combined.walPosition?.(42n);
    combined.retrying?.('KAFKA_UNAVAILABLE');
    expect(calls).toEqual(['a:state:standby', 'b:state:standby', 'a:wal:42', 'b:wal:42', 'r:KAFKA_UNAVAILABLE']);
    expect(combined.delivered).toBeUndefined();
  });
});
