/**
 * The deployment examples parse, and what they configure is what the relay understands: every OUTBOX_RELAY_*
 * variable is a real setting with a valid value, the grace periods cover the drain timeout, the probes hit
 * the relay's endpoints on its port, secrets come from files that are actually mounted.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, posix, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { readEnv } from '../../src/config/load.js';
import { SETTINGS, SETTINGS_BY_KEY } from '../../src/config/settings.js';
import { parseDuration } from '../../src/config/units.js';
import { latestExitMs } from '../../src/cli/signals.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');
/** The block `npm run bench` generates in docs/benchmarks.md: the latest run (the hand-written text around it keeps earlier ones). */
const generatedBench = () => {
  const bench = read('docs/benchmarks.md');
  return bench.slice(bench.indexOf('<!-- bench:begin'), bench.indexOf('<!-- bench:end'));
};

const DEFAULT_GRACE_MS = SETTINGS_BY_KEY.get('shutdownGrace')!.default as number;
const DEFAULT_HTTP_PORT = SETTINGS_BY_KEY.get('http.port')!.default as number;
/** Environment variables the relay reads besides one per setting. */
const OTHER_ENV = new Set(['OUTBOX_RELAY_CONFIG']);

/** Checks each OUTBOX_RELAY_* variable against the settings list and its schema; returns the unknown/invalid ones. */
function invalidRelayEnv(env: Record<string, string>): string[] {
  const problems: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('OUTBOX_RELAY_') || OTHER_ENV.has(name)) continue;
    const setting = SETTINGS.find((s) => s.env === name);
    if (!setting) {
      problems.push(`${name}: no such setting`);
      continue;
    }
    const result = setting.schema.safeParse(value);
    if (!result.success) problems.push(`${name}=${value}: ${result.error.issues.map((i) => i.message).join('; ')}`);
  }
  return problems;
}

function graceMs(env: Record<string, string>): number {
  const value = env[SETTINGS_BY_KEY.get('shutdownGrace')!.env];
  return value === undefined ? DEFAULT_GRACE_MS : parseDuration(value)!;
}

function dockerfileUid(): number {
  const user = /^USER\s+(\d+)/m.exec(read('Dockerfile'));
  expect(user, 'Dockerfile USER is numeric').not.toBeNull();
  return Number(user![1]);
}

describe('examples/docker-compose.yml', () => {
  type Service = {
    image?: string;
    build?: { context: string; dockerfile?: string };
    command?: string[];
    entrypoint?: string[];
    environment?: Record<string, string | number>;
    healthcheck?: { test: string[] };
    depends_on?: Record<string, { condition: string }>;
    secrets?: string[];
    volumes?: string[];
    ports?: string[];
    stop_grace_period?: string;
    restart?: string;
    read_only?: boolean;
  };
  const compose = parse(read('examples/docker-compose.yml'), { merge: true }) as { services: Record<string, Service>; secrets: Record<string, { file: string }> };
  const services = compose.services;
  const relay = services['outbox-relay']!;
  const setup = services['outbox-relay-setup']!;
  // Compose interpolates ${...} and turns $$ into $: the relay sees the unescaped value.
  const envOf = (s: Service) => Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v).replace(/\$\$/g, '$')]));

  it('has PostgreSQL 15 with logical decoding, a single-node KRaft Kafka, the one-shot setup and the relay', () => {
    expect(Object.keys(services)).toEqual(expect.arrayContaining(['postgres', 'kafka', 'outbox-relay-setup', 'outbox-relay']));
    expect(services.postgres!.image).toMatch(/^postgres:15\b/);
    expect(services.postgres!.command).toContain('wal_level=logical');
    const kafka = services.kafka!;
    expect(kafka.image).toMatch(/^apache\/kafka:/);
    expect(String(kafka.environment!.KAFKA_PROCESS_ROLES).split(',').sort()).toEqual(['broker', 'controller']);
    // The relay reaches the broker under the address the broker advertises.
    const advertised = String(kafka.environment!.KAFKA_ADVERTISED_LISTENERS).replace(/^[A-Z_]+:\/\//, '');
    expect(envOf(relay).OUTBOX_RELAY_KAFKA_BROKERS).toBe(advertised);
  });

  it('keeps at least twice the shipped slot-lag alert’s threshold of WAL for the slot: the alert fires before PostgreSQL invalidates it', () => {
    const keep = services.postgres!.command!.find((arg) => arg.startsWith('max_slot_wal_keep_size='))!;
    const [, size, unit] = /^max_slot_wal_keep_size=(\d+)(MB|GB|TB)$/.exec(keep)!;
    const keepBytes = Number(size) * 1024 ** { MB: 2, GB: 3, TB: 4 }[unit as 'MB' | 'GB' | 'TB'];
    const rule = read('examples/kubernetes/relay.yaml').match(/expr: max by \(job\) \(outbox_relay_slot_lag_bytes - outbox_relay_replay_window_bytes\) > (\d+)/);
    expect(keepBytes).toBeGreaterThanOrEqual(2 * Number(rule![1]));
  });

  it('builds the relay image from this repository and runs `setup` once, then `run`', () => {
    for (const s of [setup, relay]) {
      expect(s.build?.context).toBe('..');
      expect(existsSync(join(root, 'examples', s.build!.context, s.build!.dockerfile ?? 'Dockerfile'))).toBe(true);
      expect(s.image).toBe(relay.image);
      expect(s.read_only).toBe(true);
    }
    expect(setup.command).toEqual(['setup']);
    expect(setup.restart).toBe('no');
    expect(relay.command).toEqual(['run']);
  });

  it('starts each service only when what it needs is healthy or done', () => {
    for (const name of ['postgres', 'kafka']) expect(services[name]!.healthcheck?.test.length, `${name} healthcheck`).toBeGreaterThan(0);
    // The relay's own health check is the image's HEALTHCHECK: `outbox-relay health`, a GET of /healthz.
    expect(read('Dockerfile')).toMatch(/^HEALTHCHECK\b.*\\\n\s*CMD \[.*"health"\]$/m);
    expect(setup.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    expect(relay.depends_on).toMatchObject({
      postgres: { condition: 'service_healthy' },
      kafka: { condition: 'service_healthy' },
      'outbox-relay-setup': { condition: 'service_completed_successfully' },
    });
    for (const [name, dep] of Object.entries(relay.depends_on!)) {
      const hasHealthcheck = services[name]!.healthcheck !== undefined;
      expect(dep.condition, name).toBe(hasHealthcheck ? 'service_healthy' : 'service_completed_successfully');
    }
  });

  it('sets only real settings with valid values, and the topic the relay produces to exists', () => {
    expect(invalidRelayEnv(envOf(setup))).toEqual([]);
    expect(invalidRelayEnv(envOf(relay))).toEqual([]);
    // The demo inserts aggregate_type 'order'; the relay never creates topics.
    const topic = envOf(relay).OUTBOX_RELAY_TOPIC!.replace('${aggregate_type}', 'order');
    const created = services['kafka-topics']!.command!;
    expect(created[created.indexOf('--topic') + 1]).toBe(topic);
  });

  it('gives the relay longer to stop than its drain timeout, and publishes its HTTP port', () => {
    const env = envOf(relay);
    expect(parseDuration(relay.stop_grace_period!)!).toBeGreaterThan(latestExitMs(graceMs(env)));
    const port = Number(env.OUTBOX_RELAY_HTTP_PORT ?? DEFAULT_HTTP_PORT);
    expect(relay.ports!.some((p) => p.endsWith(`:${port}`))).toBe(true);
  });

  it('reads passwords from mounted secret files, the relay’s matching sql/003_relay_role.sql', () => {
    expect(envOf(relay)).toHaveProperty('OUTBOX_RELAY_POSTGRES_PASSWORD_FILE');
    for (const s of [setup, relay, services.postgres!]) {
      for (const [name, value] of Object.entries(envOf(s)).filter(([k]) => k.endsWith('PASSWORD_FILE'))) {
        const secret = /^\/run\/secrets\/([^/]+)$/.exec(value)?.[1];
        expect(secret, `${name} points into /run/secrets`).toBeDefined();
        expect(s.secrets, `${name}: secret mounted`).toContain(secret);
        expect(existsSync(join(root, 'examples', compose.secrets[secret!]!.file))).toBe(true);
      }
      expect(Object.keys(envOf(s)).filter((k) => /PASSWORD$/.test(k))).toEqual([]);
    }
    expect(new URL(envOf(relay).OUTBOX_RELAY_POSTGRES_URL!).password).toBe('');
    const relayPassword = readFileSync(join(root, 'examples', compose.secrets.outbox_relay_password!.file), 'utf8').trim();
    expect(read('sql/003_relay_role.sql')).toContain(`PASSWORD '${relayPassword}'`);
    expect(new URL(envOf(relay).OUTBOX_RELAY_POSTGRES_URL!).username).toBe('outbox_relay');
    for (const volume of services.postgres!.volumes!.filter((v) => v.startsWith('../'))) {
      expect(existsSync(join(root, 'examples', volume.split(':')[0]!)), volume).toBe(true);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Kubernetes manifests

type Probe = { httpGet?: { path: string; port: string | number }; periodSeconds?: number; failureThreshold?: number };
type Container = {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  ports?: { name?: string; containerPort: number }[];
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
};
type PodSpec = {
  terminationGracePeriodSeconds: number;
  enableServiceLinks?: boolean;
  securityContext: Record<string, unknown>;
  containers: Container[];
  volumes: { name: string; secret?: { secretName: string; defaultMode?: number } }[];
};
type Manifest = {
  kind: string;
  apiVersion: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: Record<string, unknown> & { template?: { metadata: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec } };
  stringData?: Record<string, string>;
};

/** Kubernetes reads YAML 1.1 (0440 is octal there). */
function manifests(path: string): Manifest[] {
  return parseAllDocuments(read(path), { version: '1.1' }).map((d) => {
    expect(d.errors).toEqual([]);
    return d.toJS() as Manifest;
  });
}

function envOfContainer(container: Container): Record<string, string> {
  return Object.fromEntries((container.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
}

function expectSecretsFromFiles(docs: Manifest[], pod: PodSpec, relay: Container, env: Record<string, string>): void {
  const secret = docs.find((d) => d.kind === 'Secret')!;
  const fileSettings = Object.entries(env).filter(([name]) => name.endsWith('_FILE'));
  expect(fileSettings.map(([name]) => name)).toEqual(expect.arrayContaining(['OUTBOX_RELAY_POSTGRES_PASSWORD_FILE', 'OUTBOX_RELAY_KAFKA_SASL_PASSWORD_FILE']));
  for (const [name, path] of fileSettings) {
    const mount = relay.volumeMounts?.find((m) => path.startsWith(`${m.mountPath}/`));
    expect(mount, `${name}: ${path} is on a mounted volume`).toBeDefined();
    expect(mount!.readOnly).toBe(true);
    const volume = pod.volumes.find((v) => v.name === mount!.name)!;
    expect(volume.secret?.secretName).toBe(secret.metadata.name);
    expect(Object.keys(secret.stringData ?? {})).toContain(posix.relative(mount!.mountPath, path));
    // Group-readable only, and the group is the pod's fsGroup (secret files are owned by root).
    expect(volume.secret!.defaultMode).toBe(0o440);
  }
  expect(pod.securityContext.fsGroup).toBe(pod.securityContext.runAsGroup);
  const secretEnv = SETTINGS.filter((s) => s.secret).map((s) => s.env);
  for (const name of secretEnv.filter((n) => env[n] !== undefined)) {
    // A URL is fine as long as it carries no password.
    expect(() => new URL(env[name]!).password).not.toThrow();
    expect(new URL(env[name]!).password, name).toBe('');
  }
}

/**
 * Service links put <SERVICE>_PORT=tcp://… into the pod for every Service of the namespace: one named
 * outbox-relay-http would set OUTBOX_RELAY_HTTP_PORT, which the relay reads as http.port. Turned off, with the why.
 */
function expectNoServiceLinks(path: string, pod: PodSpec): void {
  expect(pod.enableServiceLinks).toBe(false);
  expect(read(path)).toMatch(/# No service links: .*\n(\s*#.*\n)*\s*enableServiceLinks: false\n/);
}

function expectHardenedRelay(pod: PodSpec, relay: Container): void {
  expect(pod.securityContext.runAsNonRoot).toBe(true);
  expect(pod.securityContext.runAsUser).toBe(dockerfileUid());
  expect(relay.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
}

describe('examples/kubernetes/sidecar.yaml', () => {
  const docs = manifests('examples/kubernetes/sidecar.yaml');
  const deployment = docs.find((d) => d.kind === 'Deployment')!;
  const pod = deployment.spec!.template!.spec;
  const relay = pod.containers.find((c) => c.name === 'outbox-relay')!;
  const env = envOfContainer(relay);
  const port = Number(env.OUTBOX_RELAY_HTTP_PORT ?? DEFAULT_HTTP_PORT);
  const portOf = (probe: Probe | undefined) => {
    const p = probe?.httpGet?.port;
    return typeof p === 'number' ? p : relay.ports?.find((x) => x.name === p)?.containerPort;
  };

  it('is a Deployment whose pod runs the app and the relay side by side', () => {
    expect(docs.map((d) => d.kind)).toEqual(['Secret', 'Deployment']);
    expect(pod.containers.map((c) => c.name)).toEqual(['app', 'outbox-relay']);
    expect(relay.args).toEqual(['run']);
    expect(invalidRelayEnv(env)).toEqual([]);
  });

  it('waits for the drain and the relay\'s own exit before killing: terminationGracePeriodSeconds > shutdown grace + 7.5 s (when the relay is gone at the latest, its held log lines written or given up)', () => {
    expect(env.OUTBOX_RELAY_SHUTDOWN_GRACE).toBeDefined();
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(latestExitMs(graceMs(env)));
  });

  it('probes liveness on /healthz (and readiness, if at all, on /readyz) at the relay’s HTTP port', () => {
    expect(relay.ports?.map((p) => p.containerPort)).toContain(port);
    expect(relay.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(portOf(relay.livenessProbe)).toBe(port);
    // Omitted on purpose in a sidecar (see the comment in the manifest); where present it must be /readyz.
    if (relay.readinessProbe) {
      expect(relay.readinessProbe.httpGet?.path).toBe('/readyz');
      expect(portOf(relay.readinessProbe)).toBe(port);
    }
    expect(Number(deployment.spec!.template!.metadata.annotations?.['prometheus.io/port'])).toBe(port);
  });

  it('runs as the image’s non-root user on a read-only root filesystem with bounded resources', () => {
    expectHardenedRelay(pod, relay);
    for (const key of ['cpu', 'memory']) expect(relay.resources?.requests?.[key], `requests.${key}`).toBeDefined();
    expect(relay.resources?.limits?.memory).toBeDefined();
  });

  it('takes every secret from files of a mounted Secret readable by the pod’s group, none from plain values', () => {
    expectSecretsFromFiles(docs, pod, relay, env);
  });

  it('turns off Kubernetes service links, whose OUTBOX_RELAY_<SERVICE>_PORT=tcp://… a Service could give the relay, and says why', () => {
    expectNoServiceLinks('examples/kubernetes/sidecar.yaml', pod);
  });
});

describe('examples/kubernetes/relay.yaml: the dedicated active + standby Deployment', () => {
  const docs = manifests('examples/kubernetes/relay.yaml');
  const of = (kind: string) => docs.find((d) => d.kind === kind)!;
  const deployment = of('Deployment');
  const spec = deployment.spec as { replicas: number; selector: { matchLabels: Record<string, string> }; strategy: { type: string; rollingUpdate?: { maxSurge: number; maxUnavailable: number } } };
  const podLabels = deployment.spec!.template!.metadata.labels ?? {};
  const pod = deployment.spec!.template!.spec;
  const relay = pod.containers.find((c) => c.name === 'outbox-relay')!;
  const env = envOfContainer(relay);
  const port = Number(env.OUTBOX_RELAY_HTTP_PORT ?? DEFAULT_HTTP_PORT);
  const portName = relay.ports?.find((p) => p.containerPort === port)?.name;
  const selects = (selector: { matchLabels: Record<string, string> }) => Object.entries(selector.matchLabels).every(([k, v]) => podLabels[k] === v);

  it('is a Secret, the Deployment, a PodDisruptionBudget, a PodMonitor and the PrometheusRule', () => {
    expect(docs.map((d) => d.kind)).toEqual(['Secret', 'Deployment', 'PodDisruptionBudget', 'PodMonitor', 'PrometheusRule']);
    expect(pod.containers.map((c) => c.name)).toEqual(['outbox-relay']);
    expect(relay.args).toEqual(['run']);
    expect(invalidRelayEnv(env)).toEqual([]);
    expect(selects(spec.selector)).toBe(true);
  });

  it('runs one active and one standby, and rolls out new pods before old ones go (a standby throughout)', () => {
    expect(spec.replicas).toBe(2);
    expect(spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(latestExitMs(graceMs(env)));
  });

  it('keeps one pod through voluntary disruptions (PodDisruptionBudget)', () => {
    const pdb = of('PodDisruptionBudget').spec as { minAvailable: number; selector: { matchLabels: Record<string, string> } };
    expect(pdb.minAvailable).toBe(1);
    expect(selects(pdb.selector)).toBe(true);
  });

  it('probes start-up and liveness on /healthz, and has no /readyz readiness probe, which a standby never passes', () => {
    expect(portName).toBeDefined();
    for (const probe of [relay.startupProbe, relay.livenessProbe]) {
      expect(probe?.httpGet?.path).toBe('/healthz');
      expect(probe?.httpGet?.port).toBe(portName);
    }
    // The start-up allowance is larger than what the liveness probe tolerates.
    expect(relay.startupProbe!.periodSeconds! * relay.startupProbe!.failureThreshold!).toBeGreaterThanOrEqual(30);
    expect(relay.readinessProbe).toBeUndefined();
  });

  it('is scraped by a PodMonitor on the relay’s port, and carries exactly the alert rules of deploy/prometheus/alerts.yaml', () => {
    const monitor = of('PodMonitor').spec as { selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: { port: string; path: string }[] };
    expect(selects(monitor.selector)).toBe(true);
    expect(monitor.podMetricsEndpoints).toEqual([expect.objectContaining({ port: portName, path: '/metrics' })]);
    const rule = of('PrometheusRule');
    expect(rule.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(rule.spec).toEqual(parse(read('deploy/prometheus/alerts.yaml')));
  });

  it('carries the rules’ comments as deploy/prometheus/alerts.yaml has them: its groups are that file’s text, indented', () => {
    // The parsed comparison above drops comments, which are what an operator reads to tune a rule.
    const groupsText = (text: string, indent: string) =>
      text
        .slice(text.indexOf(`\n${indent}groups:`) + 1)
        .split('\n')
        .map((line) => line.slice(indent.length))
        .join('\n')
        .trimEnd();
    const manifest = read('examples/kubernetes/relay.yaml');
    // The PrometheusRule is the last document: its groups run to the end of the file.
    expect(manifest.lastIndexOf('\n---')).toBeLessThan(manifest.indexOf('\n  groups:'));
    expect(groupsText(manifest, '  ')).toBe(groupsText(read('deploy/prometheus/alerts.yaml'), ''));
    // Before: its blank lines carried the indent as trailing spaces (compared only after trimming each line).
    expect(manifest.split('\n').filter((line) => /\s$/.test(line))).toEqual([]);
  });

  it('requests and limits memory for the measured peak RSS (docs/benchmarks.md, the latest bench run) with some headroom', () => {
    // The generated block only: the hand-written tables below it keep earlier measurements of other defaults.
    const generated = generatedBench();
    const peaks = [...generated.matchAll(/\| (\d+) MiB \|/g)].map((m) => Number(m[1]));
    const peak = Math.max(...peaks);
    expect(peak).toBeGreaterThan(100);
    const mebibytes = (q: string | undefined) => Number(/^(\d+)Mi$/.exec(q ?? '')?.[1]);
    const limit = mebibytes(relay.resources?.limits?.memory);
    expect(limit).toBeGreaterThanOrEqual(peak * 1.1);
    expect(limit).toBeLessThanOrEqual(peak * 1.5);
    expect(mebibytes(relay.resources?.requests?.memory)).toBe(limit);
    expect(relay.resources?.requests?.cpu).toBeDefined();
  });

  it('quotes in docs/kubernetes.md the peak RSS of the latest bench run: drains per client and steady load', () => {
    const generated = generatedBench();
    const defaultClient = /### Targets \(default client: (\w+)\)/.exec(generated)?.[1];
    expect(defaultClient).toBe('rdkafka');
    const cells = (line: string) => line.split('|').map((c) => c.trim());
    const mib = (cell: string | undefined) => Number(/^(\d+) MiB$/.exec(cell ?? '')?.[1]);
    /**
     * The rows of the generated table whose header starts with `first`, and the index of a column by the start of
     * its header: by name, so that a column the report adds does not shift what the test reads.
     */
    const table = (first: string) => {
      const lines = generated.split('\n');
      const header = lines.findIndex((l) => l.startsWith(`| ${first} |`));
      expect(header, `the generated block's table "${first}"`).toBeGreaterThanOrEqual(0);
      const end = lines.findIndex((l, i) => i > header && !l.startsWith('|'));
      const names = cells(lines[header]!);
      return { rows: lines.slice(header + 2, end).map(cells), column: (name: string) => names.findIndex((c) => c.startsWith(name)) };
    };
    const drains = table('shape | insert time | client');
    const drainPeaks = (client: string) => drains.rows.filter((c) => c[drains.column('client')] === client).map((c) => mib(c[drains.column('peak RSS')]));
    const steadyLevels = table('client | target');
    const steady = steadyLevels.rows.map((c) => mib(c[steadyLevels.column('peak RSS')]));
    expect(drainPeaks(defaultClient!)).toHaveLength(2);
    expect(drainPeaks('kafkajs')).toHaveLength(2);
    expect(steady.length).toBeGreaterThan(0);
    expect([...drainPeaks(defaultClient!), ...drainPeaks('kafkajs'), ...steady].every(Number.isFinite)).toBe(true);

    const doc = read('docs/kubernetes.md').replace(/\s+/g, ' ');
    const quoted = /is (\d+)–(\d+) MiB with the default client and up to (\d+) MiB with kafkajs \(docs\/benchmarks\.md; (\d+)–(\d+) MiB under steady load\)/.exec(doc);
    expect(quoted, 'docs/kubernetes.md: the sentence quoting the peak RSS').not.toBeNull();
    expect(quoted!.slice(1).map(Number)).toEqual([
      Math.min(...drainPeaks(defaultClient!)),
      Math.max(...drainPeaks(defaultClient!)),
      Math.max(...drainPeaks('kafkajs')),
      Math.min(...steady),
      Math.max(...steady),
    ]);
  });

  it('quotes in its own memory comment the same peak RSS as docs/kubernetes.md (what an operator copying it reads)', () => {
    const doc = read('docs/kubernetes.md').replace(/\s+/g, ' ');
    const quoted = /is (\d+)–(\d+) MiB with the default client and up to (\d+) MiB with kafkajs \(docs\/benchmarks\.md; (\d+)–(\d+) MiB under steady load\)/.exec(doc);
    expect(quoted, 'docs/kubernetes.md: the sentence quoting the peak RSS').not.toBeNull();
    const manifest = read('examples/kubernetes/relay.yaml').replace(/\n\s*#\s*/g, ' ');
    const comment = /backlog drain was (\d+)-(\d+) MiB with rdkafka and up to (\d+) MiB with kafkajs \(docs\/benchmarks\.md\); steady load (\d+)-(\d+) MiB/.exec(manifest);
    expect(comment, 'examples/kubernetes/relay.yaml: the resources comment quoting the peak RSS').not.toBeNull();
    expect(comment!.slice(1).map(Number)).toEqual(quoted!.slice(1).map(Number));
  });

  it('runs as the image’s non-root user on a read-only root filesystem, secrets from mounted files', () => {
    expectHardenedRelay(pod, relay);
    expectSecretsFromFiles(docs, pod, relay, env);
  });

  it('turns off Kubernetes service links, whose OUTBOX_RELAY_<SERVICE>_PORT=tcp://… a Service could give the relay, and says why', () => {
    expectNoServiceLinks('examples/kubernetes/relay.yaml', pod);
  });
});

describe('OUTBOX_RELAY_* variables the documentation and the shipped files name', () => {
  /** Where an operator copies a variable's name from. */
  const files = [
    'README.md',
    'Dockerfile',
    ...['docs', 'examples', 'deploy', 'config', 'sql'].flatMap((dir) =>
      readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
        .filter((entry) => entry.isFile())
        .map((entry) => posix.join(relative(root, entry.parentPath).split(sep).join('/'), entry.name)),
    ),
  ];
  /** docs/cli.md's placeholder for "the variable of the setting" in config check's source column. */
  const PLACEHOLDERS = new Set(['OUTBOX_RELAY_X']);

  it('are each one the relay reads: no line of readEnv says it is not read (a former name may warn that it is deprecated)', () => {
    const named = new Set(files.flatMap((file) => [...read(file).matchAll(/\bOUTBOX_RELAY_[A-Z0-9_]+/g)].map((m) => m[0])));
    expect(named.size).toBeGreaterThan(20);
    const unread = [...named].filter((name) => {
      if (PLACEHOLDERS.has(name)) return false;
      const lines: string[] = [];
      readEnv({ [name]: 'x' }, (line) => lines.push(line));
      return lines.some((line) => line.includes('is not read by outbox-relay'));
    });
    expect(unread).toEqual([]);
  });
});
