import { existsSync, mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** True when every directory from `path` up to `/` lets other users in (x bit), so the postgres user can reach it. */
export function traversableByOthers(path: string): boolean {
  let dir = resolve(path);
  for (;;) {
    if (existsSync(dir) && (statSync(dir).mode & 0o001) === 0) return false;
    const parent = dirname(dir);
    if (parent === dir) return true;
    dir = parent;
  }
}

/**
 * Where the ephemeral clusters live: OUTBOX_STACK_DIR, else `.stack/` in the checkout. As root the
 * servers run as `postgres`, which cannot enter a checkout under a private home directory; then we
 * fall back to a directory under the system temp dir rather than loosening anyone's permissions.
 */
export function stackRoot(): string {
  const configured = process.env.OUTBOX_STACK_DIR;
  let root = configured ? resolve(configured) : join(repoRoot, '.stack');
  if (!configured && process.getuid?.() === 0 && !traversableByOthers(repoRoot)) {
    root = join(tmpdir(), 'outbox-relay-stack');
  }
  mkdirSync(root, { recursive: true, mode: 0o755 });
  return root;
}

/**
 * One directory per run (`OUTBOX_STACK_RUN`, default `run-<pid>`), so that several runs on one machine (two
 * developers' test suites, the demo beside the tests) never touch each other's servers. Child processes
 * (test workers) inherit the variable and so find the run's servers.
 */
export function runDir(): string {
  process.env.OUTBOX_STACK_RUN ??= `run-${process.pid}`;
  const dir = join(stackRoot(), process.env.OUTBOX_STACK_RUN);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  return dir;
}

/** Downloaded jars: OUTBOX_STACK_CACHE, else `.cache/` in the checkout (git-ignored, survives `.stack` wipes). */
export function cacheRoot(): string {
  const dir = process.env.OUTBOX_STACK_CACHE ? resolve(process.env.OUTBOX_STACK_CACHE) : join(repoRoot, '.cache');
  mkdirSync(dir, { recursive: true });
  return dir;
}
