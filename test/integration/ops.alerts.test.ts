/**
 * The shipped monitoring artefacts: deploy/prometheus/alerts.yaml passes `promtool check rules` and the
 * `promtool test rules` fixture, and every metric (and every `state` label value) that the alerts, the fixture
 * and deploy/grafana/outbox-relay.json refer to is exported by a running relay. promtool comes with Debian's
 * `prometheus` package (scripts/install-prerequisites.sh).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { RELAY_STATES } from '../../src/pipeline/observer.js';
import { repoRoot } from '../../stack/index.js';
import { useDatabase } from '../support/database.js';
import { httpArgs, scrape } from '../support/ops-http.js';
import { insertEvents, setupOutbox } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { readTopic, uniqueName } from '../support/services.js';

const run = promisify(execFile);
const ALERTS = 'deploy/prometheus/alerts.yaml';
const FIXTURE = 'test/fixtures/alerts.promtool.yaml';
const DASHBOARD = 'deploy/grafana/outbox-relay.json';

const read = (path: string) => readFileSync(join(repoRoot, path), 'utf8');

async function promtool(args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run('promtool', args, { cwd: repoRoot });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error('promtool not found: install Debian’s prometheus package (bash scripts/install-prerequisites.sh)');
    return { code: Number(e.code), output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

interface Dashboard {
  panels: { id: number; title: string; targets: { expr: string }[] }[];
  templating: { list: { name: string; multi?: boolean; includeAll?: boolean }[] };
}

/** Every PromQL expression the artefacts contain. */
function expressions(): { where: string; expr: string }[] {
  const dashboard = JSON.parse(read(DASHBOARD)) as Dashboard;
  const fromDashboard = dashboard.panels.flatMap((p) => p.targets.map((t) => ({ where: `${DASHBOARD}: ${p.title}`, expr: t.expr })));
  const fromAlerts = [...read(ALERTS).matchAll(/^\s*- alert: (\S+)\n(?:\s*#.*\n)*\s*expr: (.+)$/gm)].map((m) => ({ where: `${ALERTS}: ${m[1]!}`, expr: m[2]! }));
  const fromFixture = [...read(FIXTURE).matchAll(/series: '([^']+)'/g)].map((m) => ({ where: FIXTURE, expr: m[1]! }));
  return [...fromDashboard, ...fromAlerts, ...fromFixture];
}

/** Sample names a scrape can carry: each family's name, plus the series names of histograms and summaries. */
function exportedNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name!);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${name!}${suffix}`);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(`${name!}${suffix}`);
  }
  return names;
}

describe('deploy/: Prometheus alerts and the Grafana dashboard', () => {
  const db = useDatabase('alerts');

  it('alerts.yaml passes promtool check rules, with the seven documented alerts', async () => {
    const checked = await promtool(['check', 'rules', ALERTS]);
    expect(checked.code, checked.output).toBe(0);
    const alerts = [...read(ALERTS).matchAll(/^\s*- alert: (\S+)$/gm)].map((m) => m[1]);
    expect(alerts).toEqual(['OutboxRelayHalted', 'OutboxRelaySlotLost', 'OutboxRelayNotReady', 'OutboxRelaySlotLagHigh', 'OutboxRelayEndToEndLagHigh', 'OutboxRelayEventsDropped', 'OutboxRelayNoStandby']);
  });

  it('alerts.yaml fires as the promtool fixture expects: a healthy pair, a halt on a lost slot, a relay without standby', async () => {
    const tested = await promtool(['test', 'rules', FIXTURE]);
    expect(tested.code, tested.output).toBe(0);
    // Every alert is expected to fire in some case of the fixture, not only to stay silent.
    const fired = new Set([...read(FIXTURE).matchAll(/alertname: (\S+)\n\s+exp_alerts:\n\s+- exp_labels/g)].map((m) => m[1]));
    const alerts = [...read(ALERTS).matchAll(/^\s*- alert: (\S+)$/gm)].map((m) => m[1]);
    expect([...fired].sort()).toEqual([...alerts].sort());
  });

  it('the dashboard is well-formed: unique panel ids, each panel has a query', () => {
    const dashboard = JSON.parse(read(DASHBOARD)) as Dashboard;
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of dashboard.panels) expect(panel.targets.length, panel.title).toBeGreaterThan(0);
  });

  it('the dashboard shows one slot: its job variable takes one job, and every query selects exactly it', () => {
    const dashboard = JSON.parse(read(DASHBOARD)) as Dashboard;
    // Before: several jobs or All, and the stat panels (active, standby, slot lost) summed the instances of every slot.
    expect(dashboard.templating.list.find((v) => v.name === 'job')).toMatchObject({ multi: false, includeAll: false });
    for (const panel of dashboard.panels) {
      for (const { expr } of panel.targets) expect([...expr.matchAll(/\{([^}]*)\}/g)].every((m) => m[1]!.startsWith('job="$job"')), `${panel.title}: ${expr}`).toBe(true);
    }
  });

  it('every metric and state the dashboard, the alerts and the fixture use is on a running relay’s /metrics', async () => {
    // A replay window registers outbox_relay_replay_window_bytes, which the dashboard shows.
    const setup = await setupOutbox(db(), { extraArgs: ['--replay-window', '1GiB', '--checkpoint-topic', uniqueName('checkpoints')] });
    const http = await httpArgs();
    const relay = startRelay([...setup.args, ...http.args]);
    await relay.waitForMessage('streaming from PostgreSQL', 60_000);
    const inserted = await insertEvents(db(), 3);
    await readTopic(setup.topic, { expected: inserted.length });
    const exposition = await scrape(http.base);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);

    const exported = exportedNames(exposition);
    const used = expressions();
    expect(used.length).toBeGreaterThan(20);
    const missing = used.flatMap(({ where, expr }) => [...expr.matchAll(/\b(outbox_relay_[a-z0-9_]+)\b/g)].map((m) => m[1]!).filter((name) => !exported.has(name)).map((name) => `${where}: ${name}`));
    expect(missing).toEqual([]);
    const states = used.flatMap(({ where, expr }) => [...expr.matchAll(/\bstate="([^"]+)"/g)].map((m) => ({ where, state: m[1]! })));
    expect(states.length).toBeGreaterThan(0);
    expect(states.filter((s) => !(RELAY_STATES as readonly string[]).includes(s.state))).toEqual([]);
    // And the running relay exports each of them (as 0 or 1).
    expect(states.filter((s) => !exposition.includes(`outbox_relay_state{state="${s.state}"}`))).toEqual([]);
  });
});
