import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';
import { repoRoot } from '../../stack/index.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The CLI bundled from the source at the run's start (cliArgs). */
    relayBin: string;
  }
}

/**
 * Global setup of both projects: the CLI bundled from the source as it is now, every run (0.2 s), for the tests that
 * start it (cliArgs). A file per project, so that the two builds never write one file at once: one level below the
 * package root, as dist/ (the bundle reads ../package.json and resolves node_modules from there).
 */
export default async function setup(project: TestProject): Promise<void> {
  const relayBin = join(repoRoot, '.test-bin', `outbox-relay-${project.name}.js`);
  await promisify(execFile)(process.execPath, [join(repoRoot, 'scripts/build-bin.mjs'), '--outfile', relayBin]);
  project.provide('relayBin', relayBin);
}
