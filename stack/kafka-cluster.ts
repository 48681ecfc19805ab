import { Kafka, logLevel } from 'kafkajs';
import { KafkaBroker, randomClusterId } from './kafka.js';
import { freePort } from './ports.js';
import { waitUntil } from './processes.js';

/** A JVM start with log recovery takes over a minute when the 2 cores are saturated by the test's own load. */
const START_TIMEOUT_MS = 180_000;

export interface KafkaClusterOptions {
  name: string;
  /** Nodes, each broker and controller in one JVM; default 3 (a controller quorum survives one loss). */
  nodes?: number;
  version?: string;
  /** Per JVM; default 384m: three brokers share a 2-core machine with PostgreSQL and the tests. */
  heap?: string;
  /** Extra broker properties for every node. */
  properties?: Record<string, string>;
}

export interface PartitionState {
  partition: number;
  leader: number;
  isr: number[];
}

/**
 * A replicated KRaft cluster on loopback, for fault tests: replication factor 3 and min.insync.replicas 2
 * everywhere (topics, offsets, transaction state), so a produce with acks=all survives one dead node and
 * a leader change really happens when the leader dies. Nodes are addressed by their node id (1..n).
 */
export class KafkaCluster {
  readonly name: string;
  readonly nodes: KafkaBroker[] = [];
  private readonly options: KafkaClusterOptions;

  constructor(options: KafkaClusterOptions) {
    this.name = options.name;
    this.options = options;
  }

  /** Every node's client listener (the bootstrap list for clients: any live node will do). */
  get brokers(): string[] {
    return this.nodes.flatMap((n) => n.brokers);
  }

  get version(): string {
    return this.nodes[0]?.version ?? 'unknown';
  }

  async start(): Promise<this> {
    const count = this.options.nodes ?? 3;
    const ports = await Promise.all(Array.from({ length: count * 2 }, () => freePort()));
    const voters = Array.from({ length: count }, (_, i) => `${i + 1}@127.0.0.1:${ports[count + i]}`).join(',');
    const clusterId = randomClusterId();
    const replicas = String(Math.min(3, count));
    const minIsr = String(Math.min(2, count));
    for (let i = 0; i < count; i++) {
      this.nodes.push(
        new KafkaBroker({
          name: `${this.name}-${i + 1}`,
          version: this.options.version,
          nodeId: i + 1,
          port: ports[i],
          controllerPort: ports[count + i],
          quorumVoters: voters,
          clusterId,
          heap: this.options.heap ?? '384m',
          properties: {
            'default.replication.factor': replicas,
            'min.insync.replicas': minIsr,
            'offsets.topic.replication.factor': replicas,
            'transaction.state.log.replication.factor': replicas,
            'transaction.state.log.min.isr': minIsr,
            // A restarted node takes its leaderships back soon, so every round of a fault test starts balanced.
            'leader.imbalance.check.interval.seconds': '5',
            ...this.options.properties,
          },
        }),
      );
    }
    try {
      // The quorum needs a majority of voters up before any node is ready: launch all, then wait.
      await Promise.all(this.nodes.map((n) => n.launch()));
      await Promise.all(this.nodes.map((n) => n.waitReady(START_TIMEOUT_MS)));
      await this.waitForBrokers(count);
    } catch (err) {
      await this.stop();
      throw err;
    }
    return this;
  }

  node(nodeId: number): KafkaBroker {
    const node = this.nodes.find((n) => n.nodeId === nodeId);
    if (!node) throw new Error(`no node ${nodeId} in cluster ${this.name} (nodes ${this.nodes.map((n) => n.nodeId).join(', ')})`);
    return node;
  }

  private async withAdmin<T>(action: (admin: ReturnType<Kafka['admin']>) => Promise<T>): Promise<T> {
    const kafka = new Kafka({ clientId: 'stack-cluster', brokers: this.brokers, logLevel: logLevel.NOTHING, retry: { retries: 2 }, connectionTimeout: 1000 });
    const admin = kafka.admin();
    await admin.connect();
    try {
      return await action(admin);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** Live node ids as the cluster's metadata reports them. */
  async liveBrokers(): Promise<number[]> {
    return this.withAdmin(async (admin) => (await admin.describeCluster()).brokers.map((b) => b.nodeId).sort());
  }

  async partitions(topic: string): Promise<PartitionState[]> {
    return (await this.partitionsOf([topic]))[0]!;
  }

  /**
   * The partitions of each topic, in the order given, from one admin connection and metadata request: a fault test
   * waits on five topics, and a connection per topic and poll cost seconds per wait on a loaded 2-core host.
   */
  private async partitionsOf(topics: string[]): Promise<PartitionState[][]> {
    return this.withAdmin(async (admin) => {
      const found = (await admin.fetchTopicMetadata({ topics })).topics;
      return topics.map((name) =>
        (found.find((t) => t.name === name)?.partitions ?? []).map((p) => ({ partition: p.partitionId, leader: p.leader, isr: [...p.isr].sort() })),
      );
    });
  }

  async leaderOf(topic: string, partition: number): Promise<number> {
    const state = (await this.partitions(topic)).find((p) => p.partition === partition);
    if (!state) throw new Error(`topic ${topic} has no partition ${partition}`);
    return state.leader;
  }

  /** The node that leads most partitions of the topics (the lowest id on a tie): the one whose loss hurts most. */
  async busiestLeader(topics: string | string[]): Promise<number> {
    const counts = new Map<number, number>();
    for (const p of (await this.partitionsOf([topics].flat())).flat()) counts.set(p.leader, (counts.get(p.leader) ?? 0) + 1);
    const [best] = [...counts].filter(([id]) => id >= 0).sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    if (!best) throw new Error(`no partition of ${[topics].flat().join(', ')} has a leader`);
    return best[0];
  }

  /** Crash: SIGKILL of the node's JVM. The controller notices only after broker.session.timeout.ms: see waitForFailover. */
  async kill(nodeId: number): Promise<void> {
    await this.node(nodeId).kill();
  }

  /** Waits until the controller moved every leadership of the topics off `nodeId` and dropped it from the ISRs. */
  async waitForFailover(topics: string | string[], nodeId: number, timeoutMs = 60_000): Promise<void> {
    await waitUntil(
      `partitions of ${[topics].flat().join(', ')} led and replicated without node ${nodeId}`,
      async () => (await this.partitionsOf([topics].flat())).flat().every((p) => p.leader >= 0 && p.leader !== nodeId && !p.isr.includes(nodeId)),
      timeoutMs,
      250,
    );
  }

  /** Starts a stopped or killed node again on its ports and data, and waits until the cluster lists it. */
  async restart(nodeId: number): Promise<void> {
    const node = this.node(nodeId);
    await node.kill();
    await node.launch();
    await node.waitReady(START_TIMEOUT_MS);
    await waitUntil(`node ${nodeId} back in cluster ${this.name}`, async () => (await this.liveBrokers()).includes(nodeId), 60_000, 250);
  }

  async waitForBrokers(count: number, timeoutMs = 60_000): Promise<void> {
    await waitUntil(`${count} live brokers in cluster ${this.name}`, async () => (await this.liveBrokers()).length >= count, timeoutMs, 250);
  }

  /** Waits until every partition of the topics has a leader and at least `minIsr` in-sync replicas (default: all nodes). */
  async waitForIsr(topics: string | string[], minIsr = this.nodes.length, timeoutMs = 90_000): Promise<void> {
    await waitUntil(
      `every partition of ${[topics].flat().join(', ')} with ${minIsr} in-sync replicas`,
      async () => (await this.partitionsOf([topics].flat())).flat().every((p) => p.leader >= 0 && p.isr.length >= minIsr),
      timeoutMs,
      250,
    );
  }

  /**
   * Stops every node. SIGKILL, not a controlled shutdown: the data is thrown away, and a controlled shutdown
   * of the last nodes waits for a quorum that is already gone.
   */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill()));
  }

  destroy(): void {
    for (const node of this.nodes) node.destroy();
  }
}
