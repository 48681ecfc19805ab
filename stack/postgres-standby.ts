import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PostgresServer } from './postgres.js';

/**
 * A hot standby of `primary`, streaming its WAL, built without pg_basebackup (the Maven binaries of 16 and later
 * have only initdb, pg_ctl and postgres): the primary is stopped cleanly, its data directory copied (cp -a keeps
 * the postgres user's ownership when we run as root), and the copy started with standby.signal and a
 * primary_conninfo. The primary is started again first. Everything the primary had is on the standby.
 */
export async function startStandby(primary: PostgresServer, name: string): Promise<PostgresServer> {
  await primary.stop();
  const standby = new PostgresServer({
    name,
    binDir: primary.binDir,
    settings: { primary_conninfo: `host=127.0.0.1 port=${primary.port} user=postgres`, hot_standby: 'on' },
  });
  if (existsSync(standby.dataDir)) throw new Error(`${standby.dataDir} exists: a standby needs a fresh name`);
  execFileSync('cp', ['-a', primary.dataDir, standby.dataDir]);
  const signal = join(standby.dataDir, 'standby.signal');
  writeFileSync(signal, '');
  // The server removes it at promotion: it must be the server user's, as the rest of the directory.
  const owner = statSync(standby.dataDir);
  chownSync(signal, owner.uid, owner.gid);
  await primary.start();
  return standby.start();
}
