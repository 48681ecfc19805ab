import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './ports.js';
import { forgetPid, isAlive, readPid, spawnServer, stopPid, waitUntil } from './processes.js';
import { runDir } from './paths.js';

export const PG_BIN = process.env.OUTBOX_STACK_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface PostgresOptions {
  /** Unique name: the data directory and pidfile are named after it. */
  name: string;
  /** Extra `postgres -c` settings, e.g. `{ wal_sender_timeout: '5s', max_slot_wal_keep_size: '64MB' }`. */
  settings?: Record<string, string>;
  /** Reuse a known port (attaching to a server started by another process); default: a free one. */
  port?: number;
  /** The server's binaries (initdb, postgres): another release's (postgres-binaries.ts); default PG_BIN. */
  binDir?: string;
  /** pg_hba.conf lines put before all others (first match wins), e.g. a `hostnossl … reject` that makes a role use TLS. */
  hba?: string[];
}

/**
 * A superuser that must authenticate with scram-sha-256 (every other local connection is trusted): the trust
 * lines hide password bugs, so secrets are tested end to end against this role. The password has characters
 * that need percent-encoding in a URL.
 */
export const SCRAM_ROLE = { user: 'outbox_scram', password: 'Scram%41:Pa55@/w0rd' } as const;

const SCRAM_HBA = [
  `host all ${SCRAM_ROLE.user} 127.0.0.1/32 scram-sha-256`,
  `host replication ${SCRAM_ROLE.user} 127.0.0.1/32 scram-sha-256`,
];

const DEFAULT_SETTINGS: Record<string, string> = {
  wal_level: 'logical',
  max_replication_slots: '256',
  max_wal_senders: '64',
  max_connections: '200',
  fsync: 'off',
  synchronous_commit: 'on',
  full_page_writes: 'off',
  shared_buffers: '128MB',
  listen_addresses: '127.0.0.1',
  unix_socket_directories: '',
  log_min_messages: 'warning',
  log_replication_commands: 'on',
};

/** The uid/gid the server must run as: initdb and postgres refuse to run as root. */
function serverIdentity(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    return { uid, gid };
  } catch {
    throw new Error('running as root, but there is no "postgres" user to run the server as: apt-get install postgresql-15');
  }
}

export function assertPostgresInstalled(binDir = PG_BIN): void {
  if (!existsSync(join(binDir, 'postgres')) || !existsSync(join(binDir, 'initdb'))) {
    throw new Error(
      `PostgreSQL server binaries not found in ${binDir}: apt-get install postgresql-15 ` +
        '(or set OUTBOX_STACK_PG_BIN, or point at a running server with OUTBOX_STACK_PG_URL)',
    );
  }
}

/** An ephemeral PostgreSQL cluster of our own, controlled through its data directory. */
export class PostgresServer {
  readonly name: string;
  readonly dataDir: string;
  port = 0;
  private readonly settings: Record<string, string>;
  readonly binDir: string;
  private readonly hba: string[];

  constructor(options: PostgresOptions) {
    this.binDir = options.binDir ?? PG_BIN;
    this.name = `pg-${options.name}`;
    this.dataDir = join(runDir(), this.name);
    this.settings = { ...DEFAULT_SETTINGS, ...options.settings };
    this.port = options.port ?? 0;
    this.hba = options.hba ?? [];
  }

  /** Superuser connection string for database `db`. */
  url(db = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${db}`;
  }

  async start(): Promise<this> {
    assertPostgresInstalled(this.binDir);
    const identity = serverIdentity();
    if (!existsSync(join(this.dataDir, 'PG_VERSION'))) this.initdb(identity);
    if (this.port === 0) this.port = await freePort();
    const args = ['-D', this.dataDir, '-p', String(this.port)];
    for (const [key, value] of Object.entries(this.settings)) args.push('-c', `${key}=${value}`);
    spawnServer(this.name, join(this.binDir, 'postgres'), args, {
      logFile: join(runDir(), `${this.name}.log`),
      ...(identity ?? {}),
    });
    await this.waitReady();
    await this.ensureScramRole();
    return this;
  }

  /** Idempotent: a restarted cluster keeps its role. A standby (read-only) has its primary's, copied with the data directory. */
  private async ensureScramRole(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url() });
    await client.connect();
    try {
      const { rows } = await client.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby');
      if (rows[0]!.standby) return;
      const { rowCount } = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [SCRAM_ROLE.user]);
      const verb = rowCount ? 'ALTER' : 'CREATE';
      await client.query(`SET password_encryption = 'scram-sha-256'`);
      await client.query(`${verb} ROLE ${SCRAM_ROLE.user} SUPERUSER LOGIN REPLICATION PASSWORD '${SCRAM_ROLE.password.replace(/'/g, "''")}'`);
    } finally {
      await client.end();
    }
  }

  private initdb(identity: { uid: number; gid: number } | undefined): void {
    rmSync(this.dataDir, { recursive: true, force: true });
    mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
    if (identity) chownSync(this.dataDir, identity.uid, identity.gid);
    execFileSync(join(this.binDir, 'initdb'), ['-D', this.dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--locale=C'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      ...(identity ?? {}),
    });
    // pg_hba.conf is read top down: the scram-sha-256 lines must come before initdb's trust lines.
    const hba = join(this.dataDir, 'pg_hba.conf');
    writeFileSync(hba, `${[...this.hba, ...SCRAM_HBA].join('\n')}\n${readFileSync(hba, 'utf8')}`);
  }

  private async waitReady(): Promise<void> {
    await waitUntil(
      `PostgreSQL ${this.name} on port ${this.port} (log: ${join(runDir(), `${this.name}.log`)})`,
      async () => {
        const pid = this.pid();
        if (pid === undefined || !isAlive(pid)) throw new Error('postgres exited during start-up');
        // Generous: on a loaded machine a first connection can take seconds, and a timed-out attempt only starts over.
        const client = new pg.Client({ connectionString: this.url(), connectionTimeoutMillis: 5000 });
        client.on('error', () => undefined);
        try {
          await client.connect();
          const { rows } = await client.query<{ wal_level: string }>('SHOW wal_level');
          return rows[0]?.wal_level === this.settings.wal_level;
        } finally {
          await client.end().catch(() => undefined);
        }
      },
      // Shared CI machines run several stacks at once: a start that takes a minute is slow, not broken.
      120_000,
    );
  }

  pid(): number | undefined {
    return readPid(this.name);
  }

  /** Fast shutdown (SIGINT): what `pg_ctl stop -m fast` does. */
  async stop(): Promise<void> {
    const pid = this.pid();
    if (pid !== undefined) await stopPid(pid, 'SIGINT');
    forgetPid(this.name);
  }

  /** Crash: SIGKILL of the postmaster, as a power cut would; the next start runs crash recovery. */
  async kill(): Promise<void> {
    const pid = this.pid();
    if (pid !== undefined) {
      const backends = childrenOf(pid);
      await stopPid(pid, 'SIGKILL');
      // Orphaned backends notice the dead postmaster and exit; a restart before that finds the old shared memory in use.
      await waitUntil('orphaned backends to exit', () => backends.every((b) => !isAlive(b)), 10_000);
    }
    forgetPid(this.name);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Removes the data directory; the server must be stopped. */
  destroy(): void {
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** Settings for the next start, e.g. before a restart that must apply `max_slot_wal_keep_size`. */
  set(settings: Record<string, string>): void {
    Object.assign(this.settings, settings);
  }
}

function childrenOf(parent: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent) children.push(Number(entry));
    } catch {
      continue;
    }
  }
  return children;
}
