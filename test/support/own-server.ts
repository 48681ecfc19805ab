import { afterAll, beforeAll } from 'vitest';

/** A server the stack starts (KafkaBroker, PostgresServer). */
interface OwnedServer {
  start(): Promise<unknown>;
  stop(): Promise<void>;
  destroy(): void;
}

/**
 * A server of the test file's own, beside the shared stack (one a test stops or freezes, or with settings of its
 * own): started before the tests of the enclosing describe, stopped and its data removed after them. Returns it.
 */
export function useOwnServer<S extends OwnedServer>(server: S): S {
  beforeAll(async () => {
    await server.start();
  });
  afterAll(async () => {
    await server.stop();
    server.destroy();
  });
  return server;
}
