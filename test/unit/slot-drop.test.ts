import { describe, expect, it } from 'vitest';
import { dropConsequence } from '../../src/ops/slot-drop.js';
import { load } from '../support/config-load.js';
import { printedSettings } from '../support/printed-command.js';

describe('slot drop: what the re-send must cover', () => {
  const at = new Date('2026-12-04T10:00:00.000Z');

  it('a slot with no WAL behind the server: from a minute before the drop', () => {
    expect(dropConsequence({ confirmedFlushLsn: '0/5000', lagBytes: 0, failover: null }, { slot: 'orders_slot', publication: 'orders_pub' }, at)).toContain("republish --since '2026-12-04T09:59:00.000Z' --publication orders_pub");
  });

  it('a transaction open at the drop, begun long before it: from a minute before that transaction began (its rows carry its start)', () => {
    // It commits after the drop, so no slot streams it, and created_at (now()) is its start: 09:50 here. From
    // 09:59 the re-send missed its rows.
    const text = dropConsequence({ confirmedFlushLsn: '0/5000', lagBytes: 0, failover: null }, { slot: 'orders_slot', publication: 'orders_pub' }, at, { oldestStartMs: Date.parse('2026-12-04T09:50:00.000Z'), hidden: false });
    expect(text).toContain("republish --since '2026-12-04T09:49:00.000Z' --publication orders_pub");
  });

  it('open transactions this role cannot see: no concrete time, the margin rule instead', () => {
    const text = dropConsequence({ confirmedFlushLsn: '0/5000', lagBytes: 0, failover: null }, { slot: 'orders_slot', publication: 'orders_pub' }, at, { oldestStartMs: null, hidden: true });
    expect(text).not.toContain('2026-12-04');
    expect(text).toContain('minus a margin longer than your longest transaction');
  });

  it('a slot behind the server (a halted or lagging relay): from the last delivered event, never the drop time', () => {
    const text = dropConsequence({ confirmedFlushLsn: '0/5000', lagBytes: 4096, failover: null }, { slot: 'orders_slot', publication: 'orders_pub' }, at);
    expect(text).toContain("after the slot's confirmed position 0/5000 (4096 bytes of WAL behind the server)");
    expect(text).toContain("republish --since '<T>' --publication orders_pub, T = the commit time of the last event delivered");
    expect(text).not.toContain('2026-12-04');
  });

  it('a PostgreSQL 17 failover slot: the re-creation it names keeps the property (a plain one is not synced to standbys)', () => {
    expect(dropConsequence({ confirmedFlushLsn: '0/5000', lagBytes: 0, failover: true }, { slot: 'orders_slot', publication: 'orders_pub' }, at)).toContain('after outbox-relay slot create --slot orders_slot --publication orders_pub --failover-slot (it was a failover slot');
    expect(dropConsequence({ confirmedFlushLsn: '0/5000', lagBytes: 0, failover: false }, { slot: 'orders_slot', publication: 'orders_pub' }, at)).not.toContain('--failover-slot');
  });

  it("the slot create it names, read as its command line where the environment names another slot and publication, gives the dropped slot and the relay's publication", () => {
    const text = dropConsequence({ confirmedFlushLsn: '0/5000', lagBytes: 4096, failover: null }, { slot: 'orders_slot', publication: 'orders_pub' }, at);
    const [create, ...more] = printedSettings(text, 'slot create');
    expect(more).toEqual([]);
    const loaded = load(create!, { OUTBOX_RELAY_SLOT: 'other_slot', OUTBOX_RELAY_PUBLICATION: 'other_pub', OUTBOX_RELAY_TABLE: 'public.other_outbox', OUTBOX_RELAY_MAPPING_KEY: 'id' });
    expect([loaded.slot, loaded.publication]).toEqual(['orders_slot', 'orders_pub']);
  });
});
