import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PostgresServer } from './postgres.js';

/** What a standby needs beyond streaming: PostgreSQL 17's slot synchronization, say. */
export interface StandbyOptions {
  /** The standby's own settings beside primary_conninfo and hot_standby (which they may replace). */
  settings?: Record<string, string>;
  /** Settings the primary restarts with (synchronized_standby_slots, say). */
  primarySettings?: Record<string, string>;
}

/**
 * A hot standby of `primary`, streaming its WAL, built without pg_basebackup (the Maven binaries of 16 and later
 * have only initdb, pg_ctl and postgres): the primary is stopped cleanly, its data directory copied (cp -a keeps
 * the postgres user's ownership when we run as root), and the copy started with standby.signal and a
 * primary_conninfo. The primary is started again first. Everything the primary had is on the standby but its
 * replication slots: copies would only pin WAL there (and, once it is promoted, be slots of its own).
 */
export async function startStandby(primary: PostgresServer, name: string, options: StandbyOptions = {}): Promise<PostgresServer> {
  await primary.stop();
  const standby = new PostgresServer({
    name,
    binDir: primary.binDir,
    // dbname: PostgreSQL 17's slot synchronization connects to a database (streaming itself uses none).
    settings: { primary_conninfo: `host=127.0.0.1 port=${primary.port} user=postgres dbname=postgres`, hot_standby: 'on', ...options.settings },
  });
  if (existsSync(standby.dataDir)) throw new Error(`${standby.dataDir} exists: a standby needs a fresh name`);
  execFileSync('cp', ['-a', primary.dataDir, standby.dataDir]);
  const slots = join(standby.dataDir, 'pg_replslot');
  for (const slot of readdirSync(slots)) rmSync(join(slots, slot), { recursive: true, force: true });
  const signal = join(standby.dataDir, 'standby.signal');
  writeFileSync(signal, '');
  // The server removes it at promotion: it must be the server user's, as the rest of the directory.
  const owner = statSync(standby.dataDir);
  chownSync(signal, owner.uid, owner.gid);
  if (options.primarySettings) primary.set(options.primarySettings);
  await primary.start();
  return standby.start();
}
