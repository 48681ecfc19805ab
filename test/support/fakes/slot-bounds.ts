import type * as StartPosition from '../../../src/checkpoint/start-position.js';

/**
 * checkpoint/start-position.js for a vi.mock: the module itself, but slot "s"'s bounds read from no PostgreSQL:
 * confirmed at 0/1000 (behind the checkpoints these tests read), inactive, WAL end 0/A000, system id 7.
 */
export async function startPositionWithSlot(original: () => Promise<typeof StartPosition>): Promise<typeof StartPosition> {
  return { ...(await original()), slotBounds: async () => ({ confirmed: 0x1000n, active: false, walEnd: 0xa000n, systemId: '7' }) };
}
