import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config/load.js';
import { loadConfig } from '../../src/config/relay-config.js';
import { repoRoot } from '../../stack/paths.js';
import { refusal } from '../support/config-load.js';
import { cliArgs } from '../support/relay-bin.js';

const dir = mkdtempSync(join(tmpdir(), 'health-'));

function configFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

const HTTP = ['http.port', 'http.host'] as const;

describe('loadSettings: the few settings a command reads, resolved as loadConfig resolves them', () => {
  it('finds http.port in the config file, under the environment and the flags, as run does', () => {
    const file = configFile('port.yaml', 'http:\n  port: 8080\nkafka:\n  brokers: k:9092\n');
    for (const [flags, env, port, origin] of [
      [{}, {}, 8080, 'file'],
      [{}, { OUTBOX_RELAY_HTTP_PORT: '8081' }, 8081, 'env'],
      [{ 'http.port': '8082' }, { OUTBOX_RELAY_HTTP_PORT: '8081' }, 8082, 'flag'],
    ] as const) {
      const loaded = loadSettings(HTTP, { flags, env: { ...env, OUTBOX_RELAY_CONFIG: file } });
      expect(loaded.values['http.port']).toBe(port);
      expect(loaded.origins['http.port']).toBe(origin);
      expect(loaded.fileName).toBe(file);
      // The same value and origin as the relay's own configuration.
      const relay = loadConfig({ flags, env: { ...env, OUTBOX_RELAY_CONFIG: file } });
      expect([relay.http.port, relay.origins['http.port']]).toEqual([port, origin]);
    }
  });

  it('is not failed by the other settings: invalid values, unknown keys, a secret file gone since the start', () => {
    const file = configFile('others.yaml', 'http:\n  port: 8080\nslot: Bad!\nkafka:\n  brokrs: k:9092\npostgres:\n  passwordFile: /missing/pg-password\n');
    expect(refusal(() => loadConfig({ flags: {}, env: { OUTBOX_RELAY_CONFIG: file } })).message).toMatch(/^3 settings are invalid/);
    expect(loadSettings(HTTP, { flags: {}, env: { OUTBOX_RELAY_CONFIG: file, OUTBOX_RELAY_DELIVERY_GUARANTEE: 'maybe' } }).values).toEqual({ 'http.port': 8080, 'http.host': '::' });
  });

  it('refuses an invalid value of its own settings, naming where it came from', () => {
    const file = configFile('bad-port.yaml', 'http:\n  port: 99999\n');
    const r = refusal(() => loadSettings(HTTP, { flags: {}, env: { OUTBOX_RELAY_CONFIG: file } }));
    expect(r.code).toBe('CONFIG_INVALID');
    expect(r.message).toContain(`invalid key "http.port" in ${file}: 99999`);
  });

  it('needs an unreadable config file only when one of its settings was left to it', () => {
    const env = { OUTBOX_RELAY_CONFIG: join(dir, 'missing.yaml') };
    expect(refusal(() => loadSettings(HTTP, { flags: {}, env })).message).toContain(`cannot read config file ${env.OUTBOX_RELAY_CONFIG}`);
    expect(loadSettings(HTTP, { flags: {}, env: { ...env, OUTBOX_RELAY_HTTP_PORT: '8080', OUTBOX_RELAY_HTTP_HOST: '127.0.0.1' } }).values['http.port']).toBe(8080);
  });
});

describe('outbox-relay health', () => {
  let server: Server;
  let port: number;
  let status = 200;
  const hits: string[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      hits.push(req.url ?? '');
      res.writeHead(status, { 'content-type': 'application/json' }).end(status === 200 ? '{"alive":true}' : '{"alive":false,"state":"streaming","silentForMs":130000}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  /** The CLI with only `env` (nothing of this process's OUTBOX_RELAY_*), asynchronously: the server answers in this process. */
  function health(args: string[], env: Record<string, string>, nodeArgs: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OUTBOX_RELAY_')));
    const child = spawn(process.execPath, [...nodeArgs, ...cliArgs(['health', ...args])], { cwd: repoRoot, env: { ...clean, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  }

  it('probes /healthz at the port of the config file, on the loopback for a wildcard host, and says where the port came from', async () => {
    const file = configFile('health.yaml', `http:\n  port: ${port}\n  host: "::"\n`);
    hits.length = 0;
    status = 200;
    const result = await health([], { OUTBOX_RELAY_CONFIG: file });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(`healthy: http://127.0.0.1:${port}/healthz answered 200 (http.port ${port}, from key "http.port" in ${file})\n`);
    expect(hits).toEqual(['/healthz']);
  });

  it('still asks a relay that answers when its own start took the whole 4 s (a throttled CPU): healthy, not unreachable unasked', async () => {
    hits.length = 0;
    status = 200;
    // Blocks the process for 4.5 s before the command runs, as a throttled container's slow start does.
    const slowStart = ['--import', 'data:text/javascript,const t = Date.now(); while (Date.now() - t < 4500);'];
    const result = await health([], { OUTBOX_RELAY_HTTP_PORT: String(port) }, slowStart);
    expect(result.code, result.stderr).toBe(0);
    expect(hits).toEqual(['/healthz']);
  });

  it('exits 1 on a 503, naming the URL, the body and the port’s source, with what it means', async () => {
    status = 503;
    const result = await health(['--json'], { OUTBOX_RELAY_HTTP_PORT: String(port) });
    expect(result.code).toBe(1);
    const { error } = JSON.parse(result.stdout) as { error: { code: string; message: string; fix: string } };
    expect(error.code).toBe('RELAY_UNHEALTHY');
    expect(error.message).toBe(`http://127.0.0.1:${port}/healthz (http.port ${port}, from environment variable OUTBOX_RELAY_HTTP_PORT) answered 503: {"alive":false,"state":"streaming","silentForMs":130000}`);
    expect(error.fix).toMatch(/^the relay is wedged/);
  });

  it('with http.port 0 exits 1, not healthy: the server is off, and the fix names http.port', async () => {
    const result = await health([], { OUTBOX_RELAY_HTTP_PORT: '0' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^outbox-relay: CONFIG_INVALID: http\.port 0, from environment variable OUTBOX_RELAY_HTTP_PORT: the HTTP server is off, so there is no \/healthz to probe\n {2}fix: set http\.port .*--no-healthcheck/);
  });

  it('exits 1, not 2, on a configuration it refuses (Docker reserves 2), and on a refused connection', async () => {
    const refused = await health([], { OUTBOX_RELAY_CONFIG: join(dir, 'missing.yaml') });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^outbox-relay: CONFIG_INVALID: cannot read config file /);
    // Usage errors Commander finds (a flag without its value, an argument too many): 2 until 2026-12-07.
    for (const args of [['--http-port'], ['extra']]) {
      const usage = await health(args, {});
      expect({ args, code: usage.code }).toEqual({ args, code: 1 });
      expect(usage.stderr).toMatch(/^outbox-relay: CONFIG_INVALID: .*\n {2}fix: see outbox-relay health --help/);
    }
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const free = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const unreachable = await health(['--http-port', String(free)], {});
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(new RegExp(`^outbox-relay: RELAY_UNREACHABLE: no answer from http://127\\.0\\.0\\.1:${free}/healthz \\(http\\.port ${free}, from flag --http-port\\): .*ECONNREFUSED.*\\n {2}fix: .*flags given to run are not seen`));
  });
});
