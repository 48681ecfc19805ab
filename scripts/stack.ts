import { DEFAULT_KAFKA_VERSION, ensureKafkaJars, ensureKafkaToolsJars, reapLeftovers, startStack } from '../stack/index.js';

/**
 * `npm run stack -- fetch [versions…]`  resolve broker jars, and kafka-tools for the bench, into .cache/ (CI does this before the tests)
 * `npm run stack -- up`                  start PostgreSQL + Kafka and keep them up until Ctrl-C
 * `npm run stack -- reap`                stop servers a killed run left behind
 */
const [command = 'up', ...args] = process.argv.slice(2);

switch (command) {
  case 'fetch':
    for (const version of args.length > 0 ? args : [DEFAULT_KAFKA_VERSION]) {
      const started = Date.now();
      console.log(`kafka ${version}: ${ensureKafkaJars(version)} (${Date.now() - started} ms)`);
      console.log(`kafka-tools ${version}: ${ensureKafkaToolsJars(version)} (${Date.now() - started} ms)`);
    }
    break;
  case 'up': {
    await reapLeftovers();
    const stack = await startStack('dev');
    console.log(`postgres: ${stack.pgUrl}\nkafka:    ${stack.brokers.join(',')} (${stack.kafkaVersion})\nCtrl-C stops both.`);
    const stop = async () => {
      await stack.stop();
      process.exit(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    break;
  }
  case 'reap':
    await reapLeftovers();
    break;
  default:
    console.error(`unknown command ${command}: use fetch, up or reap`);
    process.exit(2);
}
