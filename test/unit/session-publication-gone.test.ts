import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/relay-config.js';
import { RepeatedLines } from '../../src/outage-log.js';
import { Session } from '../../src/pipeline/session.js';
import type { Delivery } from '../../src/sink/delivery.js';
import { SeenPublication } from '../../src/source/seen-publication.js';
import { connectFake } from '../support/fakes/replication-session.js';

const silent = pino({ level: 'silent' });

describe('Session, a publication the stream finds gone', () => {
  it("names the column lists and row filters the relay's pre-flights saw on it in the fix, as the pre-flight and the publication watch do", async () => {
    const config = loadConfig({ env: {}, flags: { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092', publication: 'relay_pub' }, required: [] });
    const delivery = { openSession: () => undefined, endSession: () => undefined, committed: () => undefined, push: () => true } as unknown as Delivery;
    const seen = new SeenPublication();
    seen.saw({ schema: 'public', table: 'outbox' }, { columns: ['id', 'payload'], rowFilter: "(tenant = 'a'::text)" });
    const session = new Session(config, delivery, silent, new RepeatedLines(silent), {}, () => undefined, undefined, seen);
    const server = connectFake(session, config, { walEnd: 0x5000n, walSenderTimeoutMs: 0 });
    session.start({ lsn: 0n, timeline: undefined }, undefined);
    // PostgreSQL 18's warning for WAL written while the publication did not exist (17 and older fail the stream alike).
    server.client.emit('notice', { code: '55000', severity: 'WARNING', message: 'skipped loading publication "relay_pub"', where: 'slot "outbox_relay", output plugin "pgoutput", in the change callback' });
    const error = await session.ended;
    expect(error?.code).toBe('PG_PUBLICATION_MISSING');
    expect(error?.hint).toContain(`CREATE PUBLICATION "relay_pub" FOR TABLE "public"."outbox" ("id", "payload") WHERE ((tenant = 'a'::text)) WITH (publish = 'insert', publish_via_partition_root = true);  then run outbox-relay setup`);
    await session.close();
  });
});
