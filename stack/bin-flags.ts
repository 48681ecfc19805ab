import { readFileSync } from 'node:fs';

/**
 * The node flags a script's shebang gives it (`#!/usr/bin/env -S node <flags>`): the `outbox-relay` bin sets its
 * heap limits there. `node <script>` skips the shebang, so the bench and the memory test pass these themselves
 * to run what operators run.
 */
export function shebangNodeFlags(script: string): string[] {
  const first = readFileSync(script, 'utf8').split('\n', 1)[0]!;
  return /^#!\/usr\/bin\/env -S node (.+)$/.exec(first)?.[1]?.trim().split(/\s+/) ?? [];
}
