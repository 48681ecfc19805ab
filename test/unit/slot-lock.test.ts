import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SLOT_LOCK_CLASS, slotLockKey } from '../../src/source/slot-lock.js';
import { repoRoot } from '../../stack/paths.js';

describe('the slot lock key', () => {
  it('is the pair docs/operations.md tells an operator to look for in pg_locks, both halves below 2^31', () => {
    const docs = readFileSync(join(repoRoot, 'docs/operations.md'), 'utf8').replace(/\s+/g, ' ');
    expect(docs).toContain(`\`classid = ${SLOT_LOCK_CLASS}\``);
    expect(docs).toContain(`\`objid = ${slotLockKey('outbox_relay')}\` for the default slot \`outbox_relay\``);
    for (const slot of ['outbox_relay', 'a', 'orders_outbox_relay_2']) expect(slotLockKey(slot)).toBeLessThan(2 ** 31);
    expect(SLOT_LOCK_CLASS).toBeLessThan(2 ** 31);
    expect(slotLockKey('orders')).not.toBe(slotLockKey('payments'));
  });
});
