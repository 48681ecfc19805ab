import { spawn } from 'node:child_process';
import { CpuMeter, type CpuReport } from './cpu.js';
import type { BenchDatabase } from './fixture.js';

const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

/**
 * The source limit: PostgreSQL's own client decodes the same backlog with the same plugin, protocol version and
 * publication, up to the backlog's end LSN, writing nothing anywhere. What it reaches is what the walsender's
 * decoding and the socket allow; no relay can read faster. `seconds` runs from its line "starting log streaming"
 * (-v) to its exit at the end LSN, as a relay's drain rate runs from its own "streaming" line.
 */
export async function recvlogicalRun(db: BenchDatabase, slot: string, endLsn: string): Promise<{ seconds: number; cpu: CpuReport }> {
  const args = [
    '--dbname', db.url,
    '--slot', slot,
    '--start',
    '--endpos', endLsn,
    '--no-loop',
    '-o', 'proto_version=1',
    '-o', 'publication_names=outbox_relay',
    '--fsync-interval', '0',
    '--status-interval', '1',
    '--file', '/dev/null',
    '--verbose',
  ];
  let started: number | undefined;
  const meter = new CpuMeter();
  const child = spawn(`${PG_BIN}/pg_recvlogical`, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  meter.track('pg_recvlogical', child.pid, true);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (started === undefined && stderr.includes('starting log streaming at')) started = performance.now();
  });
  let exited = false;
  let ended = NaN;
  const exit = new Promise<number | null>((resolve) => child.on('exit', resolve)).finally(() => {
    exited = true;
    ended = performance.now();
  });
  // The walsender ends with the stream: read its CPU while it lives.
  while (!exited) {
    meter.track('walsender', await db.walsenderPid(slot), true);
    meter.sample();
    await Promise.race([exit, new Promise((r) => setTimeout(r, 50))]);
  }
  const code = await exit;
  if (code !== 0) throw new Error(`pg_recvlogical exited with ${code}: ${stderr}`);
  if (started === undefined) throw new Error(`pg_recvlogical did not say when it started streaming: ${stderr}`);
  return { seconds: (ended - started) / 1000, cpu: meter.finish() };
}
