import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaCluster } from '../../stack/index.js';
import {
  CLIENTS,
  closeFaultRun,
  describeResult,
  finishFaultRun,
  guaranteesOf,
  leaderKillRound,
  majorityLossRound,
  startFaultRun,
  type FaultResult,
  type Guarantee,
} from '../support/fault-run.js';
import { killAllRelays } from '../support/relay-process.js';
import { createTopic, stack, uniqueName } from '../support/services.js';
import { checkpointTopicPolicy } from '../support/checkpoints.js';

/** Leader kills per client (the machine has 2 cores); `npm run faults` runs three per guarantee and client. */
const ROUNDS = 1;
/** Then the two other nodes down together (`npm run faults`: 45 s, past kafka.deliveryTimeout). */
const MAJORITY_LOSS_MS = 20_000;

/*
 * exactly-once runs with rdkafka only: kafkajs is refused for it at start (src/config/producer-properties.ts),
 * because its transactions failed this test: one leader SIGKILL under 4 writers (main 67f93aa, 2026-11-30) lost 51
 * of 10 177 events and delivered 70 twice to a read_committed consumer. The same run with rdkafka: 0 lost,
 * 0 duplicates, 1 source restart; kafkajs at-least-once (internal retries off): 0 lost, 96 duplicates.
 */

// The short version of the replicated-cluster fault: for each client, one relay per guarantee (each with its own
// database, slot and 6-partition topic, RF 3, min.insync.replicas 2) runs under 2 writers while the node leading
// most of their partitions is SIGKILLed and restarted, and then the two other nodes are SIGKILLed together (the
// controller quorum and min.insync.replicas lost: nothing acknowledged) and restarted. The five relays share the
// kills, which keeps the file short.
describe.skipIf(!stack().owned.kafka)('relay on a 3-broker cluster: the partition leader SIGKILLed and restarted, then 2 of the 3 nodes down together, under 2 writers per relay', () => {
  const cluster = new KafkaCluster({ name: uniqueName('failover') });

  beforeAll(() => cluster.start(), 300_000);
  afterAll(async () => {
    await killAllRelays();
    await cluster.stop();
    cluster.destroy();
  });

  // The relay creates its checkpoint topic with the brokers' default.replication.factor (3 on this cluster; Kafka's
  // own default is 1): one made by hand with one replica is named, with the fix, and one with three is not.
  it('names a checkpoint topic with one replica on this 3-node cluster, with the fix; not one with three', async () => {
    const [one, three] = [uniqueName('checkpoints'), uniqueName('checkpoints')];
    const compact = [{ name: 'cleanup.policy', value: 'compact' }];
    await Promise.all([createTopic(one, 1, cluster.brokers, compact, 1), createTopic(three, 1, cluster.brokers, compact, 3)]);
    const problem = await checkpointTopicPolicy(one, cluster.brokers);
    expect(problem?.message).toContain(`the checkpoint topic "${one}" has 1 replica(s) on a cluster of 3 brokers`);
    expect(problem?.hint).toContain('--replication-factor 3');
    expect(await checkpointTopicPolicy(three, cluster.brokers)).toBeUndefined();
  });

  // Every relay of both clients shares the kills: one round of kills for the five, instead of one per client,
  // took about 80 s off the file (the suite is CPU-bound on 2 cores). 2 writers each: 10 in all, as many as 4
  // per relay of one client gave.
  const results = new Map<string, FaultResult>();
  const runsOf = CLIENTS.flatMap((client) => guaranteesOf(client).map((guarantee) => ({ client, guarantee })));

  beforeAll(async () => {
    const runs = await Promise.all(runsOf.map(({ client, guarantee }) => startFaultRun({ guarantee, client, pgUrl: stack().pgUrl, brokers: cluster.brokers, writers: 2 })));
    try {
      const kills: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        // Let every relay produce under load first, so the kill lands mid-stream.
        await new Promise((r) => setTimeout(r, 1500));
        kills.push(await leaderKillRound(cluster, runs.map((r) => r.setup.topic)));
      }
      await new Promise((r) => setTimeout(r, 1500));
      const lost = await majorityLossRound(cluster, runs.map((r) => r.setup.topic), MAJORITY_LOSS_MS);
      const finished = await Promise.all(runs.map((run) => finishFaultRun(run)));
      for (const [i, result] of finished.entries()) {
        results.set(`${runsOf[i]!.client} ${runsOf[i]!.guarantee}`, result);
        console.log(`cluster leader SIGKILL+restart of nodes ${kills.join(', ')}, nodes ${lost.join(' and ')} down ${MAJORITY_LOSS_MS / 1000} s: ${describeResult(result)}`);
      }
    } finally {
      await Promise.all(runs.map(closeFaultRun));
    }
  }, 600_000);

  describe.each(CLIENTS)('--kafka-client %s', (client) => {
    const result = (guarantee: Guarantee): FaultResult => {
      const r = results.get(`${client} ${guarantee}`);
      if (!r) throw new Error(`no result for ${client} ${guarantee}: the fault run failed (see beforeAll)`);
      return r;
    };

    const runsWith = (guarantee: Guarantee): boolean => guaranteesOf(client).includes(guarantee);

    it('at-least-once: every committed event delivered, in commit order per partition', () => {
      const r = result('at-least-once');
      expect(r.stalled).toBeUndefined();
      expect(r.missingIds).toEqual([]);
      expect(r.lost).toBe(0);
      expect(r.unexpected).toBe(0);
      expect(r.orderViolations).toBe(0);
    });

    it.runIf(runsWith('exactly-once'))('exactly-once: every committed event exactly once for a read_committed consumer, in commit order per partition', () => {
      const r = result('exactly-once');
      console.log(`exactly-once / ${client}: ${r.sourceRestarts} source restarts over ${ROUNDS} leader kills`);
      expect(r.stalled).toBeUndefined();
      expect(r.missingIds).toEqual([]);
      expect(r.lost).toBe(0);
      expect(r.duplicates).toBe(0);
      expect(r.unexpected).toBe(0);
      expect(r.orderViolations).toBe(0);
    });

    it('at-most-once: loss measured; nothing delivered that was not committed, nothing re-sent without a relay restart', () => {
      const r = result('at-most-once');
      console.log(`at-most-once / ${client}: ${r.lost} of ${r.committed} lost (${((100 * r.lost) / Math.max(1, r.committed)).toFixed(2)} %)`);
      // Its contract: confirmed on hand-off, a failed batch dropped and never retried. The slot still confirms everything.
      expect(r.stalled).toBeUndefined();
      expect(r.unexpected).toBe(0);
      expect(r.duplicates).toBe(0);
    });
  });
});
