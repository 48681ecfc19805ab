import { DEFAULT_KAFKA_VERSION, ensureKafkaClassArchive, ensureKafkaJars, ensureKafkaToolsJars, ensurePostgresBinaries, KafkaCluster, OTHER_POSTGRES_VERSIONS, reapLeftovers, startStack } from '../stack/index.js';

/**
 * `npm run stack -- fetch [versions…]`  resolve broker jars (and make their class archive), kafka-tools for the bench, and PostgreSQL 16 to 18, into .cache/ (CI does this before the tests)
 * `npm run stack -- up`                  start PostgreSQL + Kafka and keep them up until Ctrl-C
 * `npm run stack -- up --cluster`        the same, plus a 3-broker replicated Kafka cluster (RF 3, min ISR 2)
 * `npm run stack -- reap`                stop servers a killed run left behind
 */
const [command = 'up', ...args] = process.argv.slice(2);

switch (command) {
  case 'fetch':
    for (const version of args.length > 0 ? args : [DEFAULT_KAFKA_VERSION]) {
      const started = Date.now();
      console.log(`kafka ${version}: ${ensureKafkaJars(version)} (${Date.now() - started} ms)`);
      console.log(`kafka-tools ${version}: ${ensureKafkaToolsJars(version)} (${Date.now() - started} ms)`);
      await ensureKafkaClassArchive(version);
      console.log(`kafka ${version} class archive (${Date.now() - started} ms)`);
    }
    for (const version of Object.values(OTHER_POSTGRES_VERSIONS)) {
      const started = Date.now();
      console.log(`postgres ${version}: ${ensurePostgresBinaries(version)} (${Date.now() - started} ms)`);
    }
    break;
  case 'up': {
    await reapLeftovers();
    const stack = await startStack('dev');
    const cluster = args.includes('--cluster') ? new KafkaCluster({ name: 'dev-cluster' }) : undefined;
    try {
      await cluster?.start();
    } catch (err) {
      await stack.stop();
      throw err;
    }
    console.log(`postgres: ${stack.pgUrl}\nkafka:    ${stack.brokers.join(',')} (${stack.kafkaVersion})`);
    if (cluster) console.log(`cluster:  ${cluster.brokers.join(',')} (${cluster.version}, 3 nodes, RF 3, min.insync.replicas 2)`);
    console.log('Ctrl-C stops them all.');
    // The servers are detached children, which do not keep Node's event loop alive: this timer holds the
    // command in the foreground until a signal stops what it started.
    const foreground = setInterval(() => undefined, 1 << 30);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    console.log('stopping the servers…');
    await cluster?.stop();
    cluster?.destroy();
    await stack.stop();
    clearInterval(foreground);
    console.log('stopped');
    break;
  }
  case 'reap':
    await reapLeftovers();
    break;
  default:
    console.error(`unknown command ${command}: use fetch, up or reap`);
    process.exit(2);
}
