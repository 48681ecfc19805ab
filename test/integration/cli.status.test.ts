import { describe, expect, it } from 'vitest';
import { freePort } from '../../stack/ports.js';
import { runCli, runCliJson } from '../support/cli.js';
import { useDatabase } from '../support/database.js';
import { httpArgs } from '../support/ops-http.js';
import { insertEvents, setupOutbox } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { kafkaClient, stack, uniqueName } from '../support/services.js';

interface StatusJson {
  currentWalLsn: string;
  slot: { name: string; active: boolean; activePid: number | null; lagBytes: number } | null;
  publication: { name: string; publish: string[] } | null;
  relay: { reachable: boolean; url: string; httpStatus?: number; ready?: boolean; reason?: string; readiness?: Record<string, unknown> };
}

describe('cli: outbox-relay status', () => {
  const db = useDatabase('clistatus');

  it('shows slot, publication and lag; a relay that does not answer is reported, not an error', async () => {
    const setup = await setupOutbox(db());
    await insertEvents(db(), 2);
    const flags = ['--postgres-url', db().url, '--slot', setup.slot, '--publication', setup.publication, '--relay-url', `http://127.0.0.1:${await freePort()}`];
    const [json, text] = await Promise.all([runCliJson<StatusJson>(['status', ...flags]), runCli(['status', ...flags])]);
    expect(json.code, json.stderr).toBe(0);
    expect(json.json.slot).toMatchObject({ name: setup.slot, active: false, activePid: null });
    expect(json.json.slot!.lagBytes).toBeGreaterThan(0);
    expect(json.json.publication).toMatchObject({ name: setup.publication, publish: ['insert'] });
    expect(json.json.relay.reachable).toBe(false);
    expect(json.json.relay.reason).toMatch(/ECONNREFUSED/);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^relay {2}not reachable at http:\/\/127\.0\.0\.1:\d+\/readyz/m);
    expect(text.stdout).toMatch(/^lag {18}\S/m);

    const missing = await runCliJson<StatusJson>(['status', '--postgres-url', db().url, '--slot', 'no_such_slot', '--publication', 'no_such_pub', '--relay-url', flags.at(-1)!]);
    expect(missing.code).toBe(0);
    expect(missing.json.slot).toBeNull();
    expect(missing.json.publication).toBeNull();
  });

  it('with Kafka settings reads the checkpoint without creating the checkpoint topic (none yet: null)', async () => {
    const setup = await setupOutbox(db());
    const topic = uniqueName('checkpoints');
    const result = await runCliJson<StatusJson & { checkpoint?: { topic: string; checkpoint: unknown; error?: unknown } }>([
      'status', '--postgres-url', db().url, '--slot', setup.slot, '--publication', setup.publication, '--relay-url', `http://127.0.0.1:${await freePort()}`,
      '--kafka-brokers', stack().brokers.join(','), '--checkpoint-topic', topic,
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.json.checkpoint).toEqual({ topic, checkpoint: null, replayWindow: null });
    const admin = kafkaClient().admin();
    await admin.connect();
    try {
      expect(await admin.listTopics()).not.toContain(topic);
    } finally {
      await admin.disconnect();
    }
  });

  it("includes the running relay's /readyz: streaming, confirmed LSN, producer connected", async () => {
    const setup = await setupOutbox(db());
    const http = await httpArgs();
    const relay = startRelay([...setup.args, ...http.args]);
    await relay.waitForMessage('streaming from PostgreSQL');
    const flags = ['--postgres-url', db().url, '--slot', setup.slot, '--publication', setup.publication, '--relay-url', http.base];
    const [json, text] = await Promise.all([runCliJson<StatusJson>(['status', ...flags]), runCli(['status', ...flags])]);
    expect(json.code, json.stderr).toBe(0);
    expect(json.json.slot).toMatchObject({ name: setup.slot, active: true });
    expect(json.json.relay).toMatchObject({ reachable: true, url: `${http.base}/readyz`, httpStatus: 200, ready: true });
    expect(json.json.relay.readiness).toMatchObject({ ready: true, state: 'streaming', producerConnected: true, inFlightEvents: 0 });
    expect(text.stdout).toContain(`relay              ready (HTTP 200 from ${http.base}/readyz)`);
    expect(text.stdout).toMatch(/^state {14}streaming$/m);
  });
});
