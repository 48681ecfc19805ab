import type { TestProject } from 'vitest/node';
import { reapLeftovers, startStack, stopAllTracked, type StackInfo } from '../../stack/index.js';

declare module 'vitest' {
  export interface ProvidedContext {
    stack: StackInfo;
  }
}

/** One PostgreSQL and one Kafka for the whole run; tests that kill servers start their own. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await reapLeftovers();
  const started = Date.now();
  const stack = await startStack('shared');
  console.log(`stack ready in ${Date.now() - started} ms: postgres ${stack.pgUrl}, kafka ${stack.kafkaVersion} ${stack.brokers.join(',')}`);
  const { stop: _stop, kafkaPid: _kafkaPid, ...info } = stack;
  project.provide('stack', info);
  return async () => {
    await stack.stop();
    await stopAllTracked();
  };
}
