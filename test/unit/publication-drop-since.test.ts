import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { dropPublication } from '../../src/ops/publications.js';

describe('publication drop: the republish --since covers transactions open at the drop', () => {
  it('a transaction begun 10 minutes before the drop (its rows carry created_at = its start): --since is before that start', async () => {
    const began = new Date(Date.now() - 10 * 60_000);
    const query = (sql: string, params: unknown[] = []) => {
      if (sql.includes('FROM pg_publication WHERE')) return Promise.resolve({ rows: [{ owner: 'admin', puballtables: false, pubviaroot: true, pubinsert: true, pubupdate: false, pubdelete: false, pubtruncate: false }] });
      if (sql.includes('FROM pg_replication_slots') && sql.includes('WHERE slot_name = $1'))
        return Promise.resolve({ rows: [{ slot_name: params[0], plugin: 'pgoutput', in_current_db: true, active: false, active_pid: null, slot_type: 'logical', database: 'app', held_by: null, confirmed_flush_lsn: '0/10', restart_lsn: '0/8', wal_status: 'reserved', safe_wal_size: null, lag_bytes: '0' }] });
      if (sql.includes('pg_stat_activity')) return Promise.resolve({ rows: [{ oldest: began }] });
      return Promise.resolve({ rows: [] });
    };
    const { consequence } = await dropPublication({ query } as unknown as pg.Client, 'billing_pub', 'outbox_relay', true);
    const since = /republish --since '([^']+)'/.exec(consequence ?? '')?.[1];
    expect(since).toBeDefined();
    expect(new Date(since!).getTime()).toBeLessThanOrEqual(began.getTime());
  });
});
