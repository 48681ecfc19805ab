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
  // Only plain data crosses to the test workers: StackInfo's fields, named, so that a method added to Stack stays here.
  const info: StackInfo = { pgUrl: stack.pgUrl, brokers: stack.brokers, kafkaVersion: stack.kafkaVersion, owned: stack.owned };
  project.provide('stack', info);
  return async () => {
    await stack.stop();
    await stopAllTracked();
  };
}
