import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { waitUntil } from '../../stack/index.js';
import { freePort } from '../../stack/ports.js';
import { runCli, runCliJson } from '../support/cli.js';
import { useDatabase, useFreshDatabase } from '../support/database.js';
import { hostname } from 'node:os';
import { httpArgs, httpGet, metricSamples, scrape } from '../support/ops-http.js';
import { insertEvents, setupOutbox } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { createTopic, kafkaClient, stack, uniqueName } from '../support/services.js';

interface StatusJson {
  currentWalLsn: string;
  slot: { name: string; active: boolean; activePid: number | null; heldBy: string | null; lagBytes: number } | null;
  publication: { name: string; publish: string[] } | null;
  relay: { reachable: boolean; url: string; httpStatus?: number; ready?: boolean; reason?: string; readiness?: Record<string, unknown> };
  /** Why status did not exit 0: every other exit comes with a code and a fix. */
  error?: { code: string; message: string; fix: string };
}

describe('cli: outbox-relay status', () => {
  const db = useDatabase('clistatus');

  it('shows slot, publication and lag; a relay that does not answer is reported, and exits 5', async () => {
    const setup = await setupOutbox(db());
    await insertEvents(db(), 2);
    const flags = ['--postgres-url', db().url, '--slot', setup.slot, '--publication', setup.publication, '--relay-url', `http://127.0.0.1:${await freePort()}`];
    const [json, text] = await Promise.all([runCliJson<StatusJson>(['status', ...flags]), runCli(['status', ...flags])]);
    expect(json.code, json.stderr).toBe(5);
    expect(json.json.slot).toMatchObject({ name: setup.slot, active: false, activePid: null });
    expect(json.json.slot!.lagBytes).toBeGreaterThan(0);
    expect(json.json.publication).toMatchObject({ name: setup.publication, publish: ['insert'] });
    expect(json.json.relay.reachable).toBe(false);
    expect(json.json.relay.reason).toMatch(/ECONNREFUSED/);
    expect(json.json.error).toMatchObject({ code: 'RELAY_UNREACHABLE', fix: expect.stringContaining('--relay-url') as unknown });
    expect(text.code).toBe(5);
    expect(text.stdout).toMatch(/^relay {2}not reachable at http:\/\/127\.0\.0\.1:\d+\/readyz/m);
    expect(text.stderr).toMatch(/^outbox-relay: RELAY_UNREACHABLE: no relay answered at http:\/\/127\.0\.0\.1:\d+\/readyz: .*ECONNREFUSED.*\n {2}fix: check that the relay runs/m);
    expect(text.stdout).toMatch(/^lag {18}\S/m);

    const missing = await runCliJson<StatusJson>(['status', '--postgres-url', db().url, '--slot', 'no_such_slot', '--publication', 'no_such_pub', '--relay-url', flags.at(-1)!]);
    expect(missing.code).toBe(5);
    expect(missing.json.slot).toBeNull();
    expect(missing.json.publication).toBeNull();
  });

  it('with Kafka settings reads the checkpoint without creating the checkpoint topic (none yet: null), and names a checkpoint topic whose policy drops checkpoints, with the fix', async () => {
    const setup = await setupOutbox(db());
    const topic = uniqueName('checkpoints');
    const result = await runCliJson<StatusJson & { checkpoint?: { topic: string; checkpoint: unknown; error?: unknown } }>([
      'status', '--postgres-url', db().url, '--slot', setup.slot, '--publication', setup.publication, '--relay-url', `http://127.0.0.1:${await freePort()}`,
      '--kafka-brokers', stack().brokers.join(','), '--checkpoint-topic', topic,
    ]);
    // 5: no relay answers at --relay-url; the checkpoint part is still read.
    expect(result.code, result.stderr).toBe(5);
    expect(result.json.checkpoint).toEqual({ topic, checkpoint: null, replayWindow: null });
    const admin = kafkaClient().admin();
    await admin.connect();
    try {
      expect(await admin.listTopics()).not.toContain(topic);
    } finally {
      await admin.disconnect();
    }

    // A checkpoint topic made by hand with Kafka's default policy: status names it with the fix, in both views.
    const byHand = uniqueName('checkpoints');
    await createTopic(byHand, 1, undefined, [{ name: 'cleanup.policy', value: 'delete' }]);
    const flags = ['--postgres-url', db().url, '--slot', setup.slot, '--publication', setup.publication, '--relay-url', `http://127.0.0.1:${await freePort()}`, '--kafka-brokers', stack().brokers.join(','), '--checkpoint-topic', byHand];
    const [json, text] = await Promise.all([runCliJson<StatusJson & { checkpoint?: { topicPolicy?: { code: string; message: string; fix: string } } }>(['status', ...flags]), runCli(['status', ...flags])]);
    expect(json.json.checkpoint?.topicPolicy).toMatchObject({ code: 'CHECKPOINT_TOPIC_POLICY', message: expect.stringContaining(`"${byHand}" has cleanup.policy=delete: it is never compacted`) as unknown, fix: expect.stringContaining(`--entity-name ${byHand} --add-config cleanup.policy=compact`) as unknown });
    expect(text.stdout).toMatch(/^checkpoint_topic_policy +the checkpoint topic .* \(CHECKPOINT_TOPIC_POLICY\); fix: make it compacted/m);
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
    expect(json.json.error).toBeUndefined();
    expect(text.stdout).toContain(`relay              ready (HTTP 200 from ${http.base}/readyz)`);
    expect(text.stderr).toBe('');
    expect(text.stdout).toMatch(/^state {14}streaming$/m);
    // Who holds the slot: the instance's process id, host and slot, as application_name; host and slot the same in the start line.
    const instance = `${hostname()}/${setup.slot}`;
    expect(json.json.slot!.heldBy).toBe(`outbox-relay ${relay.pid}@${instance}`.slice(0, 63));
    expect(text.stdout).toMatch(new RegExp(`^held_by +outbox-relay ${relay.pid}@${hostname()}/`, 'm'));
    expect(relay.logs.find((l) => l.msg === 'starting outbox-relay')).toMatchObject({ version: '0.1.0', instance, pid: relay.pid });
    expect(metricSamples(await scrape(http.base), 'outbox_relay_build_info')).toEqual([{ labels: { version: '0.1.0', client: expect.any(String), guarantee: 'at-least-once' }, value: 1 }]);
  });

  it('a relay that is not ready yet (Kafka unreachable at start): exit 3', async () => {
    const setup = await setupOutbox(db());
    const http = await httpArgs();
    const relay = startRelay([...setup.args, ...http.args, '--kafka-brokers', `127.0.0.1:${await freePort()}`]);
    // The HTTP server is up before the relay connects (librdkafka may spend its whole metadata timeout on that).
    await waitUntil('the relay to answer /readyz', async () => (await httpGet(`${http.base}/readyz`).catch(() => undefined)) !== undefined, 60_000);
    const status = await runCliJson<StatusJson>(['status', '--postgres-url', db().url, '--slot', setup.slot, '--publication', setup.publication, '--relay-url', http.base]);
    expect(status.code, status.stdout).toBe(3);
    expect(status.json.relay).toMatchObject({ reachable: true, ready: false, readiness: { state: 'starting' } });
    expect(status.json.error).toMatchObject({ code: 'RELAY_NOT_READY', message: 'the relay is not ready: state starting, producerConnected false', fix: expect.stringContaining('cannot connect to Kafka yet') as unknown });
    await relay.kill();
  });
});

describe('cli: status and /readyz of a halted relay', () => {
  const db = useFreshDatabase('clihalt');

  it('show the halt code, the event, its commit LSN and the fix; status exits 4', async () => {
    await db().query('ALTER TABLE outbox ADD COLUMN partition_key text');
    const setup = await setupOutbox(db(), { extraArgs: ['--mapping-key', 'partition_key'] });
    const http = await httpArgs();
    const relay = startRelay([...setup.args, ...http.args]);
    await relay.waitForMessage('streaming from PostgreSQL');
    const id = randomUUID();
    await db().query(`INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload) VALUES ($1, 'order', 'a', 'T', '{}')`, [id]);
    const logged = await relay.waitForLog((l) => l.level === 'error', 60_000, 'the halt');

    const readyz = await httpGet(`${http.base}/readyz`);
    expect(readyz.status).toBe(503);
    const body = JSON.parse(readyz.body) as { state: string; halt: Record<string, unknown> };
    expect(body.state).toBe('halted');
    expect(body.halt).toMatchObject({ code: 'RECORD_REQUIRED_NULL', eventId: id, commitLsn: logged.lsn });
    expect(body.halt).toHaveProperty('fix');
    expect(String(body.halt.message)).toContain(id);

    const flags = ['--postgres-url', db().url, '--slot', setup.slot, '--publication', setup.publication, '--relay-url', http.base];
    const [json, text] = await Promise.all([runCliJson<StatusJson>(['status', ...flags]), runCli(['status', ...flags])]);
    expect(json.code).toBe(4);
    expect(json.json.relay.readiness).toMatchObject({ state: 'halted', halt: { code: 'RECORD_REQUIRED_NULL', eventId: id } });
    expect(json.json.error).toMatchObject({ code: 'RELAY_HALTED', fix: body.halt.fix as string });
    expect(json.json.error!.message).toContain(`the relay halted with RECORD_REQUIRED_NULL: ${String(body.halt.message)}`);
    expect(text.code).toBe(4);
    expect(text.stdout).toMatch(/^halt_code +RECORD_REQUIRED_NULL$/m);
    expect(text.stderr).toContain(`outbox-relay: RELAY_HALTED: the relay halted with RECORD_REQUIRED_NULL`);
    expect(text.stderr).toContain(`fix: ${String(body.halt.fix)}`);
    expect(text.stdout).toContain(`halt_eventId`);
    expect(text.stdout).toMatch(new RegExp(`^halt_commitLsn +${String(logged.lsn)}$`, 'm'));
    relay.signal('SIGTERM');
    await relay.exited;
  });
});
