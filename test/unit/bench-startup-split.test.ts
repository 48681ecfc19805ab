import { describe, expect, it } from 'vitest';
import { describeStartup, startupSplit } from '../../bench/startup-split.js';

describe('the bench splits a cold start at its log lines', () => {
  it('gives each step the time since the one before', () => {
    const split = startupSplit({ started: 180, kafka: 240, checkpoint: 300, streaming: 345 })!;
    expect(split).toEqual({ loadMs: 180, kafkaMs: 60, checkpointMs: 60, postgresMs: 45 });
    expect(describeStartup(split)).toBe(
      'loading node, the CLI and its config 180 ms, loading the Kafka client and connecting 60 ms, reading the checkpoint (PostgreSQL connecting and checked meanwhile) 60 ms, PostgreSQL (the rest of connecting and checks, START_REPLICATION) 45 ms',
    );
  });

  it('counts PostgreSQL from the Kafka connection when no checkpoint was read', () => {
    const split = startupSplit({ started: 180, kafka: 240, streaming: 300 })!;
    expect(split).toEqual({ loadMs: 180, kafkaMs: 60, checkpointMs: undefined, postgresMs: 60 });
    expect(describeStartup(split)).not.toContain('checkpoint');
  });

  it('gives no split for a start whose log lacked a step', () => {
    expect(startupSplit({ started: 180, streaming: 300 })).toBeUndefined();
  });
});
