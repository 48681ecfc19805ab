import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { repoRoot } from '../stack/index.js';

/** ~300-byte events: a jsonb payload of about 200 bytes plus the id, aggregate and type columns. */
export const PAYLOAD_SQL = `jsonb_build_object('orderId', g, 'customer', 'c-' || (g % 1000), 'lines', 3, 'note', repeat('x', 150))`;
const ROW_SQL = `gen_random_uuid(), 'order', 'agg-' || (g % 100), 'OrderPlaced', ${PAYLOAD_SQL}`;
export const TOPIC = 'outbox.order';

/** A database of the bench's own with the outbox table, its publication, and a helper that commits rows server-side. */
export class BenchDatabase {
  readonly url: string;
  private constructor(
    readonly pool: pg.Pool,
    url: string,
  ) {
    this.url = url;
  }

  static async create(serverUrl: string, name: string): Promise<BenchDatabase> {
    const admin = new pg.Client(serverUrl);
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${name}`);
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const url = serverUrl.replace(/\/[^/?]*(\?|$)/, `/${name}$1`);
    const pool = new pg.Pool({ connectionString: url, max: 8 });
    // The stack's shutdown terminates idle pooled connections; that is the end of the run, not a failure.
    pool.on('error', () => undefined);
    await pool.query(readFileSync(join(repoRoot, 'sql/001_outbox_table.sql'), 'utf8'));
    await pool.query(`CREATE PUBLICATION outbox_relay FOR TABLE outbox WITH (publish = 'insert')`);
    // One procedure call commits many transactions without a client round trip each: the backlog is written
    // as fast as PostgreSQL can, so insert time is not mistaken for relay time.
    await pool.query(`CREATE PROCEDURE bench_insert(total int, per_txn int) LANGUAGE plpgsql AS $$
      DECLARE done int := 0;
      BEGIN
        WHILE done < total LOOP
          INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload)
            SELECT ${ROW_SQL} FROM generate_series(done + 1, least(done + per_txn, total)) g;
          COMMIT;
          done := done + per_txn;
        END LOOP;
      END $$`);
    // The steady-state writers, paced server-side: a client round trip per transaction cost the writers and their
    // backends more CPU than the relay, the walsender and the broker together at the top level, on the cores the
    // relay shares with them. Pacing is by schedule, not by sleep per transaction, so a slow commit is caught up
    // instead of lowering the rate.
    await pool.query(`CREATE PROCEDURE bench_paced(rate float8, per_txn int, seconds float8, INOUT events bigint DEFAULT 0) LANGUAGE plpgsql AS $$
      DECLARE
        started timestamptz := clock_timestamp();
        elapsed float8;
      BEGIN
        LOOP
          elapsed := extract(epoch FROM clock_timestamp() - started);
          EXIT WHEN elapsed >= seconds;
          IF events >= elapsed * rate THEN
            PERFORM pg_sleep(greatest(0.001, least(seconds - elapsed, (events - elapsed * rate) / rate)));
            CONTINUE;
          END IF;
          INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload)
            SELECT ${ROW_SQL} FROM generate_series(events + 1, events + per_txn) g;
          COMMIT;
          events := events + per_txn;
        END LOOP;
      END $$`);
    return new BenchDatabase(pool, url);
  }

  async createSlot(slot: string): Promise<void> {
    await this.pool.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  }

  async dropSlot(slot: string): Promise<void> {
    await this.pool.query(`SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`, [slot]);
  }

  async walLsn(): Promise<string> {
    const { rows } = await this.pool.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
    return rows[0]!.lsn;
  }

  /** Whether the slot's confirmed position reached `lsn`. */
  async confirmedReached(slot: string, lsn: string): Promise<boolean> {
    const { rows } = await this.pool.query<{ done: boolean }>('SELECT confirmed_flush_lsn >= $2::pg_lsn AS done FROM pg_replication_slots WHERE slot_name = $1', [slot, lsn]);
    return rows[0]?.done === true;
  }

  /** The walsender serving the slot (its backend pid), while a client streams from it. */
  async walsenderPid(slot: string): Promise<number | undefined> {
    const { rows } = await this.pool.query<{ pid: number | null }>('SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    return rows[0]?.pid ?? undefined;
  }

  /** Commits `total` events in transactions of `perTxn` rows over `connections` parallel sessions; returns the ms it took. */
  async insertBacklog(total: number, perTxn: number, connections: number): Promise<number> {
    const started = performance.now();
    const share = Math.ceil(total / connections / perTxn) * perTxn;
    const calls = [];
    for (let left = total; left > 0; left -= share) calls.push(this.pool.query('CALL bench_insert($1, $2)', [Math.min(share, left), perTxn]));
    await Promise.all(calls);
    return performance.now() - started;
  }

  /** Commits events at `rate` per second for `seconds` in transactions of `perTxn` rows, on one connection; returns how many it committed. */
  async insertPaced(rate: number, perTxn: number, seconds: number): Promise<number> {
    const { rows } = await this.pool.query<{ events: string }>('CALL bench_paced($1, $2, $3)', [rate, perTxn, seconds]);
    return Number(rows[0]!.events);
  }

  async truncate(): Promise<void> {
    await this.pool.query('TRUNCATE outbox');
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** A fresh topic whose record timestamps are the broker's append time: the consumer reads the acknowledgement time from each record. */
export async function createTopic(brokers: string[], topic: string): Promise<void> {
  const admin = new Kafka({ brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.createTopics({ topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }] }], waitForLeaders: true });
        return;
      } catch (err) {
        // A topic being deleted cannot be recreated until the deletion completed.
        if (attempt > 20) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  } finally {
    await admin.disconnect();
  }
}
