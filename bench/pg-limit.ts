import { spawn } from 'node:child_process';

const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

/**
 * The source limit: PostgreSQL's own client decodes the same backlog with the same plugin, protocol version and
 * publication, up to the backlog's end LSN, writing nothing anywhere. What it reaches is what the walsender's
 * decoding and the socket allow; no relay can read faster.
 */
export async function recvlogicalSeconds(url: string, slot: string, endLsn: string): Promise<number> {
  const args = [
    '--dbname', url,
    '--slot', slot,
    '--start',
    '--endpos', endLsn,
    '--no-loop',
    '-o', 'proto_version=1',
    '-o', 'publication_names=outbox_relay',
    '--fsync-interval', '0',
    '--status-interval', '1',
    '--file', '/dev/null',
  ];
  const started = performance.now();
  const child = spawn(`${PG_BIN}/pg_recvlogical`, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`pg_recvlogical exited with ${code}: ${stderr}`);
  return (performance.now() - started) / 1000;
}
