import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { reapLeftovers, repoRoot, startStack, type Stack } from '../stack/index.js';

/**
 * `npm run demo`: the whole path on this machine, end to end — a PostgreSQL 15 and a Kafka broker of our own,
 * `outbox-relay setup`, the relay daemon, an application committing orders with their outbox events, and a
 * consumer printing what arrives in Kafka. `npm run demo -- --keep` leaves everything running until Ctrl-C.
 */
const keep = process.argv.includes('--keep');
const cli = (args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess =>
  spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });

function prefixed(child: ChildProcess, label: string, format: (line: string) => string = (l) => l): void {
  for (const stream of [child.stdout!, child.stderr!]) createInterface({ input: stream }).on('line', (line) => console.log(`${label} ${format(line)}`));
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.on('exit', resolve));
}

/** The relay's JSON log lines, shortened for a terminal. */
function relayLine(line: string): string {
  try {
    const { level, msg, time: _t, service: _s, settings: _settings, ...rest } = JSON.parse(line) as Record<string, unknown>;
    const extra = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' ');
    return `${String(level).padEnd(5)} ${String(msg)} ${extra}`;
  } catch {
    return line;
  }
}

async function main(stack: Stack): Promise<void> {
  const admin = new pg.Client({ connectionString: stack.pgUrl });
  await admin.connect();
  await admin.query('CREATE DATABASE shop');
  await admin.end();
  const url = new URL(stack.pgUrl);
  url.pathname = '/shop';
  const db = new pg.Client({ connectionString: url.toString() });
  await db.connect();
  await db.query(readFileSync(join(repoRoot, 'sql/001_outbox_table.sql'), 'utf8'));
  await db.query('CREATE TABLE orders (id uuid PRIMARY KEY, customer text NOT NULL, total numeric NOT NULL)');

  const kafka = new Kafka({ clientId: 'demo', brokers: stack.brokers, logLevel: logLevel.NOTHING });
  const kafkaAdmin = kafka.admin();
  await kafkaAdmin.connect();
  await kafkaAdmin.createTopics({ topics: [{ topic: 'outbox.order', numPartitions: 3 }], waitForLeaders: true });
  await kafkaAdmin.disconnect();

  const env = { DATABASE_URL: url.toString(), OUTBOX_RELAY_KAFKA_BROKERS: stack.brokers.join(','), OUTBOX_RELAY_HTTP_PORT: '0' };
  console.log('\n== outbox-relay setup: checks the server, creates the publication and the slot');
  const setup = cli(['setup'], env);
  prefixed(setup, '   setup |');
  if ((await exited(setup)) !== 0) throw new Error('setup failed');

  console.log('\n== outbox-relay run: the daemon');
  const relay = cli(['run', '--status-interval', '500ms'], env);
  prefixed(relay, '   relay |', relayLine);
  const relayDone = exited(relay);
  await new Promise<void>((resolve) => createInterface({ input: relay.stdout! }).on('line', (line) => line.includes('streaming from PostgreSQL') && resolve()));

  const consumer = kafka.consumer({ groupId: `demo-${randomUUID()}` });
  await consumer.connect();
  await consumer.subscribe({ topic: 'outbox.order', fromBeginning: true });
  let received = 0;
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      received++;
      const h = message.headers ?? {};
      console.log(`   kafka | partition ${partition} key=${message.key?.toString()} type=${h.type?.toString()} lsn=${h['outbox-lsn']?.toString()} value=${message.value?.toString()}`);
    },
  });

  console.log('\n== the application: each order and its event commit in one transaction');
  const orders = 5;
  for (let i = 1; i <= orders; i++) {
    const id = randomUUID();
    const total = (i * 12.5).toFixed(2);
    await db.query('BEGIN');
    await db.query('INSERT INTO orders (id, customer, total) VALUES ($1, $2, $3)', [id, `customer-${i}`, total]);
    await db.query(
      `INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, headers) VALUES ($1, 'order', $2, 'OrderPlaced', $3, '{"source": "demo"}')`,
      [randomUUID(), id, JSON.stringify({ orderId: id, customer: `customer-${i}`, total })],
    );
    await db.query('COMMIT');
    console.log(`     app | committed order ${i} (${id})`);
  }
  const deadline = Date.now() + 30_000;
  while (received < orders && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 1500)); // one more status interval: the slot confirms what Kafka acknowledged

  console.log('\n== outbox-relay slot status: the confirmed position and the lag');
  const status = cli(['slot', 'status'], env);
  prefixed(status, '  status |');
  await exited(status);

  if (keep) {
    console.log('\n== running; insert into shop.outbox with psql to see more events (Ctrl-C stops everything)');
    console.log(`   psql ${url.toString()}`);
    await new Promise((resolve) => process.once('SIGINT', resolve));
  }
  console.log('\n== SIGTERM: the relay drains, confirms and exits 0');
  relay.kill('SIGTERM');
  const code = await relayDone;
  await consumer.disconnect();
  await db.end();
  console.log(`\n${received}/${orders} events arrived in Kafka; relay exit code ${code}`);
  if (received < orders || code !== 0) process.exitCode = 1;
}

await reapLeftovers();
console.log('== starting PostgreSQL 15 and Apache Kafka (KRaft) for the demo; first run fetches the broker jars from Maven Central');
const stack = await startStack('demo');
console.log(`   postgres ${stack.pgUrl}\n   kafka    ${stack.brokers.join(',')} (${stack.kafkaVersion})`);
try {
  await main(stack);
} finally {
  await stack.stop();
}
