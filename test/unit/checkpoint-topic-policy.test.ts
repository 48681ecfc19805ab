import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { PolicyCheck } from '../../src/checkpoint/policy-check.js';
import { checkpointTopicProblem, checkpointTopicReplication } from '../../src/checkpoint/topic-policy.js';

const TOPIC = 'outbox-relay.checkpoints';
const BROKERS = ['kafka-0:9092', 'kafka-1:9092'];

describe('checkpointTopicProblem', () => {
  it('accepts a compacted topic, as the relay creates it, and compact,delete with both retentions unlimited', () => {
    expect(checkpointTopicProblem(TOPIC, { 'cleanup.policy': 'compact', 'retention.ms': '604800000', 'retention.bytes': '-1' }, BROKERS)).toBeUndefined();
    expect(checkpointTopicProblem(TOPIC, { 'cleanup.policy': 'compact,delete', 'retention.ms': '-1', 'retention.bytes': '-1' }, BROKERS)).toBeUndefined();
  });

  it("names a delete topic's growth, its retention and the fix", () => {
    const problem = checkpointTopicProblem(TOPIC, { 'cleanup.policy': 'delete', 'retention.ms': '604800000', 'retention.bytes': '-1' }, BROKERS);
    expect(problem?.code).toBe('CHECKPOINT_TOPIC_POLICY');
    expect(problem?.message).toContain('cleanup.policy=delete');
    expect(problem?.message).toContain('never compacted');
    expect(problem?.message).toContain('older than retention.ms (168h)');
    expect(problem?.message).not.toContain('retention.bytes');
    expect(problem?.hint).toContain(`kafka-configs.sh --bootstrap-server kafka-0:9092,kafka-1:9092 --alter --entity-type topics --entity-name ${TOPIC} --add-config cleanup.policy=compact`);
  });

  it('names compact,delete by its retention only (it is compacted), by time and by size', () => {
    const problem = checkpointTopicProblem(TOPIC, { 'cleanup.policy': 'compact, delete', 'retention.ms': '3600000', 'retention.bytes': '1073741824' }, BROKERS);
    expect(problem?.message).toContain('cleanup.policy=compact,delete');
    expect(problem?.message).not.toContain('never compacted');
    expect(problem?.message).toContain('older than retention.ms (1h) or beyond retention.bytes (1GiB)');
  });

  it('reads a missing cleanup.policy as Kafka’s default, delete', () => {
    expect(checkpointTopicProblem(TOPIC, {}, BROKERS)?.message).toContain('cleanup.policy=delete: it is never compacted');
  });
});

describe('checkpointTopicReplication', () => {
  it('accepts three replicas, or every broker of a smaller cluster', () => {
    expect(checkpointTopicReplication(TOPIC, 3, 5, BROKERS)).toBeUndefined();
    expect(checkpointTopicReplication(TOPIC, 1, 1, BROKERS)).toBeUndefined();
    expect(checkpointTopicReplication(TOPIC, 2, 2, BROKERS)).toBeUndefined();
  });

  it('names fewer (the brokers\' default.replication.factor, 1 unless set), what it risks, and the fix with the count it wants', () => {
    const problem = checkpointTopicReplication(TOPIC, 1, 3, BROKERS);
    expect(problem?.code).toBe('CHECKPOINT_TOPIC_POLICY');
    expect(problem?.message).toBe(`the checkpoint topic "${TOPIC}" has 1 replica(s) on a cluster of 3 brokers: while one broker that holds it is down, exactly-once commits nothing and no start reads the checkpoint, and with its disk the position is lost (a start then begins at the slot's and re-sends the replay window)`);
    expect(problem?.hint).toContain(`kafka-reassign-partitions.sh --bootstrap-server kafka-0:9092,kafka-1:9092 --execute`);
    expect(problem?.hint).toContain(`kafka-topics.sh --bootstrap-server kafka-0:9092,kafka-1:9092 --create --topic ${TOPIC} --partitions 1 --replication-factor 3 --config cleanup.policy=compact`);
    expect(checkpointTopicReplication(TOPIC, 1, 2, BROKERS)?.hint).toContain('give it 2 replicas');
  });
});

const delete24h = () => checkpointTopicProblem(TOPIC, { 'cleanup.policy': 'delete', 'retention.ms': '86400000' }, BROKERS);

function capture(): { logger: pino.Logger; lines: { level: number; msg: string; code?: string; fix?: string }[] } {
  const lines: { level: number; msg: string; code?: string; fix?: string }[] = [];
  return { logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) }), lines };
}

describe('PolicyCheck', () => {
  it('logs one warning with the code and the fix for a delete topic, once however often it is scheduled', async () => {
    let asked = 0;
    const { logger, lines } = capture();
    const check = new PolicyCheck(TOPIC, async () => (asked++, delete24h()), logger);
    check.schedule(0);
    check.schedule(0);
    await new Promise((r) => setTimeout(r, 20));
    check.close();
    expect(asked).toBe(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, code: 'CHECKPOINT_TOPIC_POLICY' });
    expect(lines[0]!.fix).toContain('cleanup.policy=compact');
  });

  it('says nothing for a topic that keeps its checkpoints or does not exist yet', async () => {
    const { logger, lines } = capture();
    const check = new PolicyCheck(TOPIC, async () => undefined, logger);
    check.schedule(0);
    await new Promise((r) => setTimeout(r, 20));
    check.close();
    expect(lines).toEqual([]);
  });

  it('a refused DescribeConfigs is one info line, not a failure', async () => {
    const { logger, lines } = capture();
    const check = new PolicyCheck(TOPIC, async () => Promise.reject(new Error('Topic authorization failed')), logger);
    check.schedule(0);
    await new Promise((r) => setTimeout(r, 20));
    check.close();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 30 });
    expect(lines[0]!.msg).toContain('not checked');
  });

  it('a close before the delay ran never asks Kafka', async () => {
    let asked = 0;
    const check = new PolicyCheck(TOPIC, async () => (asked++, undefined), capture().logger);
    check.schedule(10);
    check.close();
    await new Promise((r) => setTimeout(r, 30));
    expect(asked).toBe(0);
  });

  it('a check that answers after the close logs nothing (the stop line stays the last)', async () => {
    let answer!: (problem: ReturnType<typeof delete24h>) => void;
    const { logger, lines } = capture();
    const check = new PolicyCheck(TOPIC, () => new Promise((resolve) => (answer = resolve)), logger);
    check.schedule(0);
    await new Promise((r) => setTimeout(r, 10));
    check.close();
    answer(delete24h());
    await new Promise((r) => setTimeout(r, 10));
    expect(lines).toEqual([]);
  });
});
