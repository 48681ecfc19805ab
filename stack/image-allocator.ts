import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './paths.js';

/** The environment variables of the image's memory allocator (ENV lines of the Dockerfile's runtime stage). */
const ALLOCATOR_ENV = ['LD_PRELOAD', 'MALLOC_CONF'] as const;

let cached: Record<string, string> | undefined;

/**
 * The allocator the image runs the relay with: jemalloc, preloaded by the runtime stage's ENV (docs/benchmarks.md,
 * "jemalloc in the image"). The bench and the memory test run the relay with the same variables, read from the
 * Dockerfile so that the two cannot drift. Throws with the fix when this machine lacks the library: measuring
 * the relay on glibc's allocator instead would report figures the image does not have. Read once per process.
 */
export function imageAllocatorEnv(): Record<string, string> {
  cached ??= readAllocatorEnv();
  return cached;
}

function readAllocatorEnv(): Record<string, string> {
  const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
  // The runtime stage is the last one; ENV lines there are `ENV NAME=value` or `ENV NAME="value"`.
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const env: Record<string, string> = {};
  for (const name of ALLOCATOR_ENV) {
    const m = new RegExp(`^ENV .*\\b${name}=("[^"]*"|\\S+)`, 'm').exec(runtime);
    if (!m) throw new Error(`the Dockerfile's runtime stage sets no ${name}`);
    env[name] = m[1]!.replace(/^"|"$/g, '');
  }
  const library = env.LD_PRELOAD!;
  const cache = execFileSync('/sbin/ldconfig', ['-p'], { encoding: 'utf8' });
  if (!cache.split('\n').some((line) => line.trim().startsWith(`${library} `))) {
    throw new Error(`${library} (the image's LD_PRELOAD) is not installed on this machine: run bash scripts/install-prerequisites.sh (Debian package libjemalloc2)`);
  }
  return env;
}
