import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { freeze, waitUntil } from '../../stack/index.js';
import { RepeatedLines } from '../../src/outage-log.js';
import { Session } from '../../src/pipeline/session.js';
import type { Delivery } from '../../src/sink/delivery.js';
import { republishScope } from '../../src/source/republish-command.js';
import { StandbyWait } from '../../src/source/standby-wait.js';
import { load } from '../support/config-load.js';
import { useDatabase } from '../support/database.js';
import { httpArgs, metricValue, scrape, waitForEndpoint } from '../support/ops-http.js';
import { compareDelivery, insertEvents, setupOutbox, slotActivePid } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { readTopic } from '../support/services.js';

describe('ops: hot standby on the same slot', () => {
  const db = useDatabase('opsstandby');

  it('waits as a standby while the slot is held and takes over after the active instance is killed', async () => {
    const setup = await setupOutbox(db());
    const httpA = await httpArgs();
    const httpB = await httpArgs();
    const a = startRelay([...setup.args, ...httpA.args]);
    await a.waitForMessage('streaming from PostgreSQL');
    const before = await insertEvents(db(), 10);
    expect(await readTopic(setup.topic, { expected: before.length, settleMs: 0 })).toHaveLength(before.length);

    const b = startRelay([...setup.args, ...httpB.args]);
    const standby = await b.waitForMessage('slot in use by another instance: waiting as standby');
    expect(standby.slot).toBe(setup.slot);
    expect(standby.activePid).toEqual(expect.any(Number));
    const notReady = await waitForEndpoint(`${httpB.base}/readyz`, 'B reports standby', (r) => JSON.parse(r.body).state === 'standby');
    expect(notReady.status).toBe(503);
    // deliveredLsn: nothing delivered by B (until 2026-12-08 "0/0").
    expect(JSON.parse(notReady.body)).toMatchObject({ ready: false, state: 'standby', producerConnected: true, deliveredLsn: null });
    const standbyMetrics = await scrape(httpB.base);
    expect(metricValue(standbyMetrics, 'outbox_relay_active')).toBe(0);
    expect(metricValue(standbyMetrics, 'outbox_relay_state', { state: 'standby' })).toBe(1);
    expect(metricValue(await scrape(httpA.base), 'outbox_relay_active')).toBe(1);
    // The standby waits on one plain connection: no replication login per poll, so A's walsender stays the only one.
    const walsenders = new Set<number>();
    for (let i = 0; i < 40; i++) {
      const { rows } = await db().query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE backend_type = 'walsender' AND datname = current_database()");
      for (const row of rows) walsenders.add(row.pid);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect([...walsenders]).toEqual([standby.activePid]);

    // The pid B saw holding the slot is A's walsender.
    expect(await slotActivePid(db(), setup.slot)).toBe(standby.activePid);
    const killedAt = Date.now();
    await a.kill();
    const streaming = await b.waitForMessage('streaming from PostgreSQL', 60_000);
    const takeoverSeconds = (Date.parse(streaming.time as string) - killedAt) / 1000;
    console.log(`standby takeover: ${takeoverSeconds.toFixed(2)} s from SIGKILL of the active relay to the standby streaming`);
    // The takeover itself: B's walsender now holds the slot. The line above is logged once START_REPLICATION was
    // sent; the walsender takes the slot as it runs the command, a moment later on a loaded machine.
    let holder: number | null = null;
    await waitUntil('a walsender holds the slot', async () => (holder = await slotActivePid(db(), setup.slot)) !== null, 10_000, 50);
    expect(holder).not.toBe(standby.activePid);

    const after = await insertEvents(db(), 20);
    const records = await readTopic(setup.topic, { expected: before.length + after.length });
    const delivery = compareDelivery([...before, ...after].map((e) => e.id), records.map((r) => r.key));
    expect(delivery.missing).toEqual([]);
    expect(delivery.unexpected).toBe(0);

    const ready = await waitForEndpoint(`${httpB.base}/readyz`, 'B ready', (r) => r.status === 200);
    expect(JSON.parse(ready.body)).toMatchObject({ ready: true, state: 'streaming' });
    const activeMetrics = await scrape(httpB.base);
    expect(metricValue(activeMetrics, 'outbox_relay_active')).toBe(1);
    expect(metricValue(activeMetrics, 'outbox_relay_reconnects_total')).toBe(1);
    expect(metricValue(activeMetrics, 'outbox_relay_events_total', { topic: setup.topic })).toBeGreaterThanOrEqual(after.length);
    expect(b.logs.filter((l) => l.msg === 'slot in use by another instance: waiting as standby')).toHaveLength(1);

    b.signal('SIGTERM');
    expect(await b.exited).toBe(0);
  });

  it('two instances that check the free slot at the same moment: one passes, the other is refused as a standby (PG_SLOT_ACTIVE, naming the first) and waits until the first lets go, though the slot is not active yet', async () => {
    const setup = await setupOutbox(db());
    const config = load({ 'postgres.url': db().url, slot: setup.slot, publication: setup.publication });
    const logger = pino({ level: 'silent' });
    // Only the checks run (open): neither session starts, so the slot itself never becomes active. The sessions
    // never reach the delivery, which only START_REPLICATION's stream feeds.
    const sessions = [0, 1].map(() => new Session(config, {} as Delivery, logger, new RepeatedLines(logger), {}, () => undefined));
    const opened = await Promise.allSettled(sessions.map((s) => s.open()));
    expect(opened.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
    const winner = sessions[opened.findIndex((o) => o.status === 'fulfilled')]!;
    const refusal = (opened.find((o) => o.status === 'rejected') as PromiseRejectedResult).reason as { code: string; retriable: boolean; details: { activePid: number } };
    expect(refusal).toMatchObject({ code: 'PG_SLOT_ACTIVE', retriable: true });
    expect(await slotActivePid(db(), setup.slot)).toBeNull();
    const { rows } = await db().query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE backend_type = 'walsender' AND datname = current_database()");
    expect(rows.map((r) => r.pid)).toEqual([refusal.details.activePid]);

    // The refused one's wait as a standby ends only once the first's connection is gone.
    const wait = new StandbyWait(config.postgres, setup.slot, republishScope(config), config.retry, logger);
    let released = false;
    const waiting = wait.untilReleased(new AbortController().signal).then(() => (released = true));
    await new Promise((r) => setTimeout(r, 2500)); // two of the standby's polls
    expect(released).toBe(false);
    await winner.close();
    await waiting;
    expect(released).toBe(true);
  });

  it('takes over from a frozen active instance once the walsender times out (wal_sender_timeout on the relay connection)', async () => {
    const setup = await setupOutbox(db());
    // A frozen process (or a dead host) closes no socket: only the server's wal_sender_timeout frees the slot.
    const url = new URL(db().url);
    url.searchParams.set('options', '-c wal_sender_timeout=3s');
    const args = [...setup.args, '--postgres-url', url.toString()];
    const httpA = await httpArgs();
    const a = startRelay([...args, ...httpA.args]);
    await a.waitForMessage('streaming from PostgreSQL');
    const b = startRelay(args);
    const standby = await b.waitForMessage('slot in use by another instance: waiting as standby');
    expect(await slotActivePid(db(), setup.slot)).toBe(standby.activePid);

    const frozenAt = Date.now();
    // Every thread stopped before the events are written: kill() returns first, and a relay still running for a
    // moment could deliver some of them itself (a duplicate once B streams them again).
    await freeze(a.pid);
    const after = await insertEvents(db(), 15);
    const streaming = await b.waitForMessage('streaming from PostgreSQL', 60_000);
    const takeoverSeconds = (Date.parse(streaming.time as string) - frozenAt) / 1000;
    console.log(`standby takeover from a frozen relay with wal_sender_timeout=3s: ${takeoverSeconds.toFixed(2)} s`);
    const holder = await slotActivePid(db(), setup.slot);
    expect(holder).toEqual(expect.any(Number));
    expect(holder).not.toBe(standby.activePid);
    // Committed while A was frozen: delivered by B, once.
    const records = await readTopic(setup.topic, { expected: after.length, settleMs: 1000 });
    expect(compareDelivery(after.map((e) => e.id), records.map((r) => r.key))).toEqual({ missing: [], duplicates: 0, unexpected: 0 });

    // Thawed, the old instance finds its connection gone and becomes the standby: never two streaming.
    a.signal('SIGCONT');
    const demoted = await waitForEndpoint(`${httpA.base}/readyz`, 'A demoted to standby', (r) => JSON.parse(r.body).state === 'standby');
    expect(demoted.status).toBe(503);
    expect(a.logs.some((l) => l.msg === 'replication connection lost: reconnecting')).toBe(true);
  });
});
