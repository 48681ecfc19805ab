/**
 * The container image without Docker (this machine has no engine): the Dockerfile is read, each stage is
 * reproduced in a temp dir exactly as its COPY and RUN lines say (the build context filtered by .dockerignore,
 * the production install from the lockfile), and the runtime stage is then run the way the image runs:
 * its ENTRYPOINT and CMD, its ENV and nothing else from this process, as its USER when we are root, configured
 * only through environment variables and a password file like the compose and Kubernetes examples.
 *
 * Because the layout is derived from the Dockerfile, the two cannot drift: a new COPY is reproduced, a COPY
 * that .dockerignore filters out or that a clean checkout lacks fails here, and so does a RUN this file does
 * not know how to reproduce.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SETTINGS, SETTINGS_BY_KEY } from '../../src/config/settings.js';
import { repoRoot, waitUntil } from '../../stack/index.js';
import { freePort } from '../../stack/ports.js';
import { insertEvents, setupOutbox } from '../support/outbox.js';
import { createDatabase, readTopic, type TestDatabase } from '../support/services.js';

const run = promisify(execFile);

// ---------------------------------------------------------------------------------------------------------------
// Dockerfile reading

interface Instruction {
  op: string;
  args: string;
  line: number;
}

interface Stage {
  name: string;
  from: string;
  instructions: Instruction[];
}

/** Logical instructions (continuations joined, comments and parser directives dropped), grouped by stage. */
function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  let pending = '';
  let startLine = 0;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && !pending)) return;
    if (!pending) startLine = index + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      return;
    }
    const full = (pending + line).trim();
    pending = '';
    const [, op = '', args = ''] = /^(\S+)\s*(.*)$/s.exec(full) ?? [];
    const instruction = { op: op.toUpperCase(), args, line: startLine };
    if (instruction.op === 'FROM') {
      const [, from = '', name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args) ?? [];
      stages.push({ name: name ?? String(stages.length), from, instructions: [] });
    } else if (stages.length > 0) {
      stages.at(-1)!.instructions.push(instruction);
    } else if (instruction.op !== 'ARG') {
      throw new Error(`Dockerfile:${startLine}: ${instruction.op} before the first FROM`);
    }
  });
  return stages;
}

/** A FROM reference with the defaults of the ARGs declared before the first FROM filled in. */
function resolveGlobalArgs(reference: string, text: string): string {
  const head = text.slice(0, text.search(/^FROM\s/m));
  const args = Object.fromEntries([...head.matchAll(/^ARG\s+(\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
  return reference.replace(/\$\{(\w+)\}/g, (_, name: string) => args[name] ?? '');
}

/** `--flag=value` options at the start of an instruction, and what follows them. */
function splitFlags(args: string): { flags: Record<string, string>; rest: string } {
  const flags: Record<string, string> = {};
  let rest = args.trim();
  for (let m = /^--([a-z-]+)(?:=(\S*))?\s+/.exec(rest); m; m = /^--([a-z-]+)(?:=(\S*))?\s+/.exec(rest)) {
    flags[m[1]!] = m[2] ?? 'true';
    rest = rest.slice(m[0].length);
  }
  return { flags, rest };
}

function execForm(args: string, where: string): string[] {
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) throw new Error(`${where}: expected the exec form ["…", …]`);
  return parsed as string[];
}

function last(stage: Stage, op: string): Instruction | undefined {
  return stage.instructions.filter((i) => i.op === op).at(-1);
}

/** The image's configuration, as the runtime stage declares it. */
function imageConfig(stage: Stage) {
  const env: Record<string, string> = {};
  for (const i of stage.instructions.filter((x) => x.op === 'ENV')) {
    for (const m of i.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S+)/g)) env[m[1]!] = m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!;
  }
  const user = last(stage, 'USER')?.args.trim();
  const healthcheck = last(stage, 'HEALTHCHECK');
  const healthCmd = healthcheck ? /\bCMD\s+(\[.*\])\s*$/s.exec(healthcheck.args)?.[1] : undefined;
  return {
    env,
    user,
    workdir: last(stage, 'WORKDIR')?.args.trim(),
    expose: stage.instructions.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(/\s+/).map((p) => Number(p.split('/')[0]))),
    entrypoint: execForm(last(stage, 'ENTRYPOINT')?.args ?? '[]', 'ENTRYPOINT'),
    cmd: execForm(last(stage, 'CMD')?.args ?? '[]', 'CMD'),
    healthcheck: healthCmd ? execForm(healthCmd, 'HEALTHCHECK') : undefined,
    healthcheckOptions: healthcheck ? splitFlags(healthcheck.args).flags : {},
  };
}

// ---------------------------------------------------------------------------------------------------------------
// .dockerignore, as the Docker engine applies it: last matching pattern wins, a pattern matches a path or any of
// its parent directories; `*` and `?` stay within one path segment, `**` spans any number of them.

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      re += glob[i + 2] === '/' ? '(?:.*/)?' : '.*';
      i += glob[i + 2] === '/' ? 2 : 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function dockerignore(contextDir: string): (path: string) => boolean {
  const file = join(contextDir, '.dockerignore');
  const patterns = (existsSync(file) ? readFileSync(file, 'utf8') : '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const glob = posix.normalize(l.slice(negate ? 1 : 0).trim()).replace(/^\/+|\/+$/g, '');
      return { negate, re: globToRegExp(glob) };
    });
  return (path) => {
    const parts = path.split('/');
    const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const p of patterns) if (candidates.some((c) => p.re.test(c))) excluded = !p.negate;
    return excluded;
  };
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

// ---------------------------------------------------------------------------------------------------------------
// Reproducing the stages

interface Reproduced {
  stages: Stage[];
  /** Host directory standing for each stage's /app. */
  dirs: Map<string, string>;
  runtime: Stage;
  /** Build-context paths the stages COPY. */
  contextSources: string[];
  /** What the runtime stage's COPY lines put into /app (top-level names). */
  runtimeEntries: string[];
  notes: string[];
}

const APP = '/app';

async function npm(args: string[], cwd: string): Promise<void> {
  await run('npm', args, { cwd, env: { ...process.env, npm_config_update_notifier: 'false' }, maxBuffer: 16 * 1024 * 1024 });
}

async function reproduceRun(command: string, stageDir: string, notes: string[], where: string): Promise<void> {
  if (/^apt-get\s/.test(command) || /^rm -rf \/var\/lib\/apt\/lists\/\*$/.test(command)) {
    notes.push(`${where}: system packages, provided by this machine: ${command}`);
  } else if (/^npm ci\b/.test(command)) {
    const args = command.split(/\s+/).slice(1);
    if (args.includes('--omit=dev')) {
      // The real production install, from npm's cache: a missing cache entry is fetched only as a fallback.
      await npm([...args, '--offline'], stageDir).catch(async () => npm([...args, '--prefer-offline'], stageDir));
    } else {
      // The complete (dev) install from the same lockfile is what this checkout's `npm ci` produced.
      expect(readFileSync(join(stageDir, 'package-lock.json'), 'utf8'), `${where}: lockfile`).toBe(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8'));
      symlinkSync(join(repoRoot, 'node_modules'), join(stageDir, 'node_modules'), 'dir');
      // npm ci runs the package's own lifecycle scripts too, on the stage's files as they are at this line: a
      // `prepare` that builds before the sources are copied fails the image's build. (postinstall patches the
      // client this checkout installed, which says it is patched already.)
      if (!args.includes('--ignore-scripts')) {
        const scripts = (JSON.parse(readFileSync(join(stageDir, 'package.json'), 'utf8')) as { scripts?: Record<string, string> }).scripts ?? {};
        for (const script of ['preinstall', 'install', 'postinstall', 'preprepare', 'prepare', 'postprepare']) {
          if (scripts[script]) await npm(['run', script], stageDir).catch((err: unknown) => {
            throw new Error(`${where}: npm ci runs the package's ${script} script (${scripts[script]}), which fails here: ${(err as Error).message}`);
          });
        }
      }
    }
  } else if (/^npm pkg delete scripts\.\w+$/.test(command)) {
    await npm(command.split(' ').slice(1), stageDir);
  } else if (command === 'npm run build') {
    await npm(['run', 'build'], stageDir);
  } else if (/^(rm -rf|strip --strip-unneeded)( [\w@.+/-]+)+$/.test(command)) {
    // Pruning and stripping inside the stage's /app: relative paths only, and never through the symlink to this
    // checkout's node_modules (the dev install), which must stay as it is.
    const [tool, flag, ...paths] = command.split(' ');
    for (const path of paths) {
      const target = join(stageDir, path);
      if (posix.isAbsolute(path) || !existsSync(dirname(target)) || !realpathSync(dirname(target)).startsWith(`${realpathSync(stageDir)}/`)) {
        throw new Error(`${where}: ${tool} ${path}: only paths inside the stage's own WORKDIR are reproduced`);
      }
      if (tool === 'rm') rmSync(target, { recursive: true, force: true });
      else await run('strip', [flag!, target]);
    }
  } else if (/^npm cache clean\b/.test(command)) {
    // nothing cached in the reproduction
  } else {
    throw new Error(`${where}: RUN ${command}: image-layout.test.ts does not know how to reproduce this; teach reproduceRun()`);
  }
}

async function reproduceImage(root: string): Promise<Reproduced> {
  const stages = parseDockerfile(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
  const ignored = dockerignore(repoRoot);
  const dirs = new Map<string, string>();
  const contextSources: string[] = [];
  const notes: string[] = [];
  let runtimeEntries: string[] = [];
  for (const stage of stages) {
    if (dirs.has(stage.from)) throw new Error(`stage ${stage.name}: FROM another stage is not reproduced; copy from it instead`);
    const dir = join(root, stage.name);
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    dirs.set(stage.name, dir);
    const entries = new Set<string>();
    let workdir: string | undefined;
    const hostPath = (containerPath: string, where: string): string => {
      const absolute = posix.isAbsolute(containerPath) ? posix.normalize(containerPath) : posix.join(workdir ?? '/', containerPath);
      if (absolute !== APP && !absolute.startsWith(`${APP}/`)) throw new Error(`${where}: ${containerPath} is outside ${APP}, which is all this reproduction maps`);
      return join(dir, posix.relative(APP, absolute));
    };
    for (const ins of stage.instructions) {
      const where = `Dockerfile:${ins.line} (${stage.name})`;
      if (ins.op === 'WORKDIR') {
        workdir = posix.normalize(ins.args.trim());
        hostPath(workdir, where);
      } else if (ins.op === 'COPY') {
        const { flags, rest } = splitFlags(ins.args);
        const parts = rest.startsWith('[') ? execForm(rest, where) : rest.split(/\s+/);
        const sources = parts.slice(0, -1);
        const destination = parts.at(-1)!;
        const intoDirectory = sources.length > 1 || destination.endsWith('/');
        const target = hostPath(destination, where);
        for (const source of sources) {
          let from: string;
          if (flags.from) {
            const fromDir = dirs.get(flags.from);
            if (!fromDir) throw new Error(`${where}: --from=${flags.from} is not an earlier stage`);
            if (!posix.isAbsolute(source) || (source !== APP && !source.startsWith(`${APP}/`))) throw new Error(`${where}: --from source ${source} must be under ${APP}`);
            from = join(fromDir, posix.relative(APP, source));
            if (!existsSync(from)) throw new Error(`${where}: stage ${flags.from} has no ${source}`);
          } else {
            const rel = posix.normalize(source).replace(/\/+$/, '');
            contextSources.push(rel);
            from = join(repoRoot, rel);
            if (!existsSync(from)) throw new Error(`${where}: ${source} is not in the build context`);
            if (ignored(rel)) throw new Error(`${where}: ${source} is excluded by .dockerignore, so the real build would not find it`);
          }
          const isDir = statSync(from).isDirectory();
          // Docker copies a directory's contents, not the directory itself.
          const dest = isDir || !intoDirectory ? target : join(target, posix.basename(source));
          if (isDir && !flags.from) {
            mkdirSync(dest, { recursive: true });
            for (const file of walk(from)) {
              const rel = relative(repoRoot, file).split('\\').join('/');
              if (ignored(rel)) continue;
              const out = join(dest, relative(from, file));
              mkdirSync(dirname(out), { recursive: true });
              cpSync(file, out);
            }
          } else {
            mkdirSync(isDir ? dest : dirname(dest), { recursive: true });
            cpSync(from, dest, { recursive: true, dereference: false });
          }
          entries.add(relative(dir, dest).split('/')[0]!);
        }
      } else if (ins.op === 'RUN') {
        const { rest } = splitFlags(ins.args);
        for (const command of rest.split('&&').map((c) => c.trim().replace(/\s+/g, ' '))) await reproduceRun(command, dir, notes, where);
      } else if (!['ENV', 'ARG', 'USER', 'EXPOSE', 'HEALTHCHECK', 'STOPSIGNAL', 'ENTRYPOINT', 'CMD', 'LABEL'].includes(ins.op)) {
        throw new Error(`${where}: ${ins.op} is not reproduced by image-layout.test.ts`);
      }
    }
    runtimeEntries = [...entries];
  }
  return { stages, dirs, runtime: stages.at(-1)!, contextSources: [...new Set(contextSources)], runtimeEntries, notes };
}

// ---------------------------------------------------------------------------------------------------------------
// Running the image's command

const ROOT = process.getuid?.() === 0;

interface Started {
  child: ChildProcess;
  logs: { msg?: string; level?: string; [k: string]: unknown }[];
  /** stdout lines that are not JSON. */
  raw: string[];
  stdout: string[];
  stderr: string[];
  exited: Promise<number | null>;
}

describe('container image: the Dockerfile reproduced without Docker', () => {
  let work: string;
  let image: Reproduced;
  let app: string;
  let config: ReturnType<typeof imageConfig>;
  let uid: number | undefined;
  let gid: number | undefined;
  let db: TestDatabase;
  const children = new Set<ChildProcess>();

  /** ENTRYPOINT + CMD as the host runs them: /app is the reproduced runtime dir, node is this node; tini is used when installed. */
  function imageCommand(cmd: string[]): string[] {
    let argv = [...config.entrypoint, ...cmd];
    if (argv[0] === 'tini') {
      const tini = ['/usr/bin/tini', '/sbin/tini'].find((p) => existsSync(p));
      argv = tini ? [tini, ...argv.slice(1)] : argv.slice(argv[1] === '--' ? 2 : 1);
    }
    return argv.map((a, i) => (i === 0 && a === 'node' ? process.execPath : a.startsWith(`${APP}/`) ? join(app, a.slice(APP.length + 1)) : a));
  }

  /** Only the image's ENV plus what a deployment sets: nothing of this test process leaks in (NODE_OPTIONS, NODE_PATH…). */
  function imageEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
    return { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', HOME: '/nonexistent', ...config.env, ...extra };
  }

  function start(argv: string[], env: Record<string, string>): Started {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: app, env: imageEnv(env), uid, gid, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    const started: Started = { child, logs: [], raw: [], stdout: [], stderr: [], exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
    createInterface({ input: child.stdout! }).on('line', (line) => {
      started.stdout.push(line);
      try {
        started.logs.push(JSON.parse(line) as Started['logs'][number]);
      } catch {
        started.raw.push(line);
      }
    });
    createInterface({ input: child.stderr! }).on('line', (line) => started.stderr.push(line));
    void started.exited.then(() => children.delete(child));
    return started;
  }

  async function waitForLog(relay: Started, msg: string, timeoutMs = 30_000): Promise<void> {
    await waitUntil(`"${msg}"`, () => relay.logs.some((l) => l.msg === msg) || relay.child.exitCode !== null, timeoutMs, 50).catch(() => undefined);
    if (!relay.logs.some((l) => l.msg === msg)) throw new Error(`no "${msg}" from the relay (exit code ${relay.child.exitCode})\nstdout:\n${relay.stdout.join('\n')}\nstderr:\n${relay.stderr.join('\n')}`);
  }

  /** The relay's settings as a deployment gives them: environment variables, the password in a mounted file. */
  async function deploymentEnv(extraArgs: string[] = []): Promise<{ env: Record<string, string>; topic: string; password: string }> {
    const setup = await setupOutbox(db, { extraArgs });
    const env: Record<string, string> = {};
    const args = setup.args.slice(setup.args.indexOf('run') + 1);
    for (let i = 0; i < args.length; i += 2) {
      const setting = SETTINGS.find((s) => s.flag === args[i]);
      if (!setting) throw new Error(`no setting for flag ${args[i]}`);
      env[setting.env] = args[i + 1]!;
    }
    // The least-privilege login of sql/003_relay_role.sql (the compose example's), its password from a file
    // readable by the image's group only, as a Kubernetes secret volume with fsGroup mounts it.
    const url = new URL(env.OUTBOX_RELAY_POSTGRES_URL!);
    url.username = 'outbox_relay';
    url.password = '';
    env.OUTBOX_RELAY_POSTGRES_URL = url.toString();
    const password = `pw-${randomBytes(12).toString('hex')}`;
    const secretDir = mkdtempSync(join(work, 'secret-'));
    chmodSync(secretDir, 0o755);
    const passwordFile = join(secretDir, 'postgres-password');
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o440 });
    if (ROOT && gid !== undefined) chownSync(passwordFile, 0, gid);
    env.OUTBOX_RELAY_POSTGRES_PASSWORD_FILE = passwordFile;
    env.OUTBOX_RELAY_HTTP_PORT = String(await freePort());
    return { env, topic: setup.topic, password };
  }

  beforeAll(async () => {
    const started = Date.now();
    work = mkdtempSync(join(tmpdir(), 'outbox-relay-image-'));
    chmodSync(work, 0o755);
    image = await reproduceImage(work);
    app = image.dirs.get(image.runtime.name)!;
    config = imageConfig(image.runtime);
    const user = /^(\d+)(?::(\d+))?$/.exec(config.user ?? '');
    if (ROOT && user) {
      uid = Number(user[1]);
      gid = Number(user[2] ?? user[1]);
    }
    db = await createDatabase('image');
    const roleSql = readFileSync(join(repoRoot, 'sql/003_relay_role.sql'), 'utf8');
    // The role is cluster-wide: another file may be creating it at the same moment.
    await db.query(roleSql).catch(async () => db.query(roleSql));
    console.log(`image reproduced in ${Date.now() - started} ms under ${work} (runs as ${uid === undefined ? 'this user' : `${uid}:${gid}`})\n  ${image.notes.join('\n  ')}`);
    // A TypeScript build and a production npm install: minutes on a busy 2-core machine.
  }, 300_000);

  afterEach(async () => {
    for (const child of children) child.kill('SIGKILL');
    await waitUntil('relays gone', () => children.size === 0, 10_000, 50);
  });

  afterAll(async () => {
    await db?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('ships what the runtime stage copies and nothing else: compiled code, production dependencies, no TypeScript', () => {
    expect(readdirSync(app).sort()).toEqual([...image.runtimeEntries].sort());
    expect(image.runtimeEntries).toEqual(expect.arrayContaining(['package.json', 'node_modules', 'dist', 'sql', 'config']));
    expect(readFileSync(join(app, 'package.json'), 'utf8')).toContain('"type": "module"');
    // One bundled file runs the relay: no module of tsc's output is left to load (scripts/build-bin.mjs).
    expect(readdirSync(join(app, 'dist'))).toEqual(['outbox-relay.js']);
    const main = readFileSync(join(app, 'dist/outbox-relay.js'), 'utf8');
    // The bin's shebang, with its heap flags (`env -S` splits them).
    expect(main).toMatch(/^#!\/usr\/bin\/env (-S )?node( --[a-z-]+=\S+)*\n/);
    const shipped = walk(app).map((f) => relative(app, f));
    expect(shipped.filter((f) => !f.startsWith('node_modules/') && /\.(ts|tsx|mts|cts)$/.test(f))).toEqual([]);
    expect(shipped.filter((f) => /^(src|test|stack|scripts|bench)\//.test(f))).toEqual([]);
  });

  it('installs exactly the production dependencies of the lockfile: no typescript, vitest or tsx', () => {
    const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; optional?: boolean; os?: string[]; cpu?: string[] }> };
    const devDependencies = Object.keys((JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies);
    expect(devDependencies).toEqual(expect.arrayContaining(['typescript', 'vitest', 'tsx']));
    for (const name of devDependencies) expect(existsSync(join(app, 'node_modules', name)), `dev dependency ${name} shipped`).toBe(false);
    const entries = Object.entries(lock.packages).filter(([path]) => path.startsWith('node_modules/'));
    const devShipped = entries.filter(([path, meta]) => meta.dev && existsSync(join(app, path))).map(([path]) => path);
    const prodMissing = entries.filter(([path, meta]) => !meta.dev && !meta.optional && !existsSync(join(app, path))).map(([path]) => path);
    expect(devShipped).toEqual([]);
    expect(prodMissing).toEqual([]);
    expect(existsSync(join(app, 'node_modules/.bin/tsc'))).toBe(false);
    // Nothing above /app may hold a node_modules either, or resolution could silently use it.
    for (let dir = dirname(app); dir !== dirname(dir); dir = dirname(dir)) expect(existsSync(join(dir, 'node_modules')), `${dir}/node_modules`).toBe(false);
  });

  it('states in docs/operations.md the size and package count this reproduction measures', () => {
    const figures = imageFigures(app);
    const generated = renderImageFigures(figures);
    const doc = readFileSync(OPERATIONS_DOC, 'utf8');
    const current = generatedSection(doc);
    expect(current, `${OPERATIONS_DOC} has no ${FIGURES_START} … ${FIGURES_END} section`).toBeDefined();
    console.log(`image figures:\n${generated}`);
    if (process.env.OUTBOX_UPDATE_DOCS === '1') {
      writeFileSync(OPERATIONS_DOC, doc.replace(current!, generated));
      return;
    }
    // Package counts are exact; sizes may differ by a few percent between file systems (block sizes).
    const documented = parseImageFigures(current!);
    expect(documented.packages, 'regenerate: OUTBOX_UPDATE_DOCS=1 npx vitest run test/integration/image-layout.test.ts').toBe(figures.packages);
    for (const key of ['appKiB', 'nodeModulesKiB', 'rdkafkaKiB'] as const) {
      expect(Math.abs(documented[key] - figures[key]) / figures[key], `${key}: documented ${documented[key]} KiB, measured ${figures[key]} KiB; regenerate with OUTBOX_UPDATE_DOCS=1`).toBeLessThan(0.05);
    }
  });

  it('relays events with `--kafka-client rdkafka`: the compiled librdkafka client loads from the image', async () => {
    const { env, topic } = await deploymentEnv();
    const relay = start(imageCommand(config.cmd), { ...env, [SETTINGS_BY_KEY.get('kafka.client')!.env]: 'rdkafka' });
    await waitForLog(relay, 'streaming from PostgreSQL');
    const inserted = await insertEvents(db, 5);
    const records = await readTopic(topic, { expected: inserted.length });
    expect(records.map((r) => r.key).sort()).toEqual(inserted.map((e) => e.id).sort());
    // The addon resolves librdkafka through its rpath, next to it in the image, not from this machine.
    const addon = join(app, RDKAFKA_ADDON);
    const linked = execFileSync('ldd', [addon], { encoding: 'utf8' });
    const librdkafka = /\blibrdkafka\.so\.1 => (\S+)/.exec(linked)?.[1];
    expect(librdkafka && resolve(librdkafka), linked).toBe(join(app, RDKAFKA_DIR, 'build/deps/librdkafka.so.1'));
    expect(linked).not.toMatch(/not found/);
    // The image's ENV preloads jemalloc into node (under tini, when this machine has it, node is tini's child).
    const tiniChildren = `/proc/${relay.child.pid}/task/${relay.child.pid}/children`;
    const nodePid = readFileSync(`/proc/${relay.child.pid}/comm`, 'utf8').trim() === 'tini' ? readFileSync(tiniChildren, 'utf8').trim() : String(relay.child.pid);
    expect(readFileSync(`/proc/${nodePid}/maps`, 'utf8')).toContain('/libjemalloc.so.2');
    relay.child.kill('SIGTERM');
    expect(await relay.exited, relay.stderr.join('\n')).toBe(0);
    expect(relay.stderr.join('\n')).not.toMatch(/LD_PRELOAD|jemalloc/);
  });

  it('runs `--help` through the image entrypoint: exit 0, lists the run command', async () => {
    const help = start(imageCommand(['--help']), {});
    const code = await help.exited;
    expect(code, help.stderr.join('\n')).toBe(0);
    const text = help.stdout.join('\n');
    expect(text).toMatch(/Usage: outbox-relay/);
    expect(text).toMatch(/^\s+run\b/m);
  });

  it('relays events with the default CMD, configured only by environment and a password file, and exits 0 on SIGTERM', async () => {
    const { env, topic, password } = await deploymentEnv();
    const relay = start(imageCommand(config.cmd), env);
    await waitForLog(relay, 'streaming from PostgreSQL');
    const inserted = await insertEvents(db, 5);
    const records = await readTopic(topic, { expected: inserted.length });
    expect(records.map((r) => r.key).sort()).toEqual(inserted.map((e) => e.id).sort());
    relay.child.kill('SIGTERM');
    expect(await relay.exited, relay.stderr.join('\n')).toBe(0);
    expect(relay.stderr).toEqual([]);
    expect(relay.raw, 'every stdout line is a JSON log line').toEqual([]);
    expect(relay.stdout.join('\n')).not.toContain(password);
  });

  // The HTTP server (src/http) is being built alongside; until it exists there is nothing for the HEALTHCHECK to hit.
  it.skipIf(!existsSync(join(repoRoot, 'src/http/server.ts')))('passes its own HEALTHCHECK while running, and /readyz answers 200 once streaming', async () => {
    expect(config.healthcheck).toBeDefined();
    const { env } = await deploymentEnv();
    const relay = start(imageCommand(config.cmd), env);
    await waitForLog(relay, 'streaming from PostgreSQL');
    await waitForLog(relay, 'health and metrics endpoints listening');
    const health = await runHealthcheck(config.healthcheck!, env);
    expect(health.code, health.output).toBe(0);
    const port = env.OUTBOX_RELAY_HTTP_PORT!;
    await waitUntil('/readyz 200', async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, 15_000);
    relay.child.kill('SIGTERM');
    expect(await relay.exited).toBe(0);
  });

  it('passes its own HEALTHCHECK with http.port set only in the config file (OUTBOX_RELAY_CONFIG), which the HEALTHCHECK reads as run does', async () => {
    const { env: deployment } = await deploymentEnv();
    const { OUTBOX_RELAY_HTTP_PORT: port, ...env } = deployment;
    const file = imageConfigFile(`http:\n  port: ${port}\n`);
    const relay = start(imageCommand(config.cmd), { ...env, OUTBOX_RELAY_CONFIG: file });
    await waitForLog(relay, 'health and metrics endpoints listening');
    const health = await runHealthcheck(config.healthcheck!, { ...env, OUTBOX_RELAY_CONFIG: file });
    expect(health.code, health.output).toBe(0);
    expect(health.output).toBe(`healthy: http://127.0.0.1:${port}/healthz answered 200 (http.port ${port}, from key "http.port" in ${file})`);
    relay.child.kill('SIGTERM');
    expect(await relay.exited).toBe(0);
  });

  it('HEALTHCHECK command: 0 on 200 from /healthz, 1 on 503, on a refused connection and on no answer', async () => {
    const hits: string[] = [];
    let status = 200;
    const server: Server = createServer((req, res) => {
      hits.push(req.url ?? '');
      if (status === 0) return; // never answers
      res.writeHead(status).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = String((server.address() as AddressInfo).port);
    try {
      expect((await runHealthcheck(config.healthcheck!, { OUTBOX_RELAY_HTTP_PORT: port })).code).toBe(0);
      expect(hits).toEqual(['/healthz']);
      // The port from a config file alone, as a deployment that mounts one sets it.
      const fromFile = await runHealthcheck(config.healthcheck!, { OUTBOX_RELAY_CONFIG: imageConfigFile(`http:\n  port: ${port}\n`) });
      expect(fromFile.code, fromFile.output).toBe(0);
      expect(hits).toEqual(['/healthz', '/healthz']);
      status = 503;
      const unhealthy = await runHealthcheck(config.healthcheck!, { OUTBOX_RELAY_HTTP_PORT: port });
      expect(unhealthy.code).toBe(1);
      expect(unhealthy.output).toMatch(/^outbox-relay: RELAY_UNHEALTHY: .* answered 503/);
      status = 0;
      const probeStarted = Date.now();
      const silent = await runHealthcheck(config.healthcheck!, { OUTBOX_RELAY_HTTP_PORT: port });
      // It gives up on its own, saying why, before Docker's --timeout would kill it, its own start included.
      expect(Date.now() - probeStarted).toBeLessThan(parseDurationSeconds(config.healthcheckOptions.timeout ?? '30s') * 1000);
      expect(silent.code).toBe(1);
      expect(silent.output).toMatch(/^outbox-relay: RELAY_UNREACHABLE: no answer from .*: no answer within \d+ ms/);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    expect((await runHealthcheck(config.healthcheck!, { OUTBOX_RELAY_HTTP_PORT: String(await freePort()) })).code).toBe(1);
    // The HTTP server turned off: nothing to probe, and it says so rather than reporting healthy.
    const off = await runHealthcheck(config.healthcheck!, { OUTBOX_RELAY_HTTP_PORT: '0' });
    expect(off.code).toBe(1);
    expect(off.output).toMatch(/^outbox-relay: CONFIG_INVALID: http\.port 0, .*the HTTP server is off[\s\S]*fix: set http\.port .*--no-healthcheck/);
  });

  async function runHealthcheck(command: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
    // Docker runs it inside the container: the image's WORKDIR, user and environment plus the container's.
    const probe = start(command.map((a, i) => (i === 0 && a === 'node' ? process.execPath : a.startsWith(`${APP}/`) ? join(app, a.slice(APP.length + 1)) : a)), env);
    const code = await probe.exited;
    return { code, output: [...probe.stdout, ...probe.stderr].join('\n') };
  }

  /** A config file as a deployment mounts one: readable by the image's user. */
  function imageConfigFile(text: string): string {
    const configDir = mkdtempSync(join(work, 'config-'));
    chmodSync(configDir, 0o755);
    const file = join(configDir, 'outbox-relay.yaml');
    writeFileSync(file, text, { mode: 0o644 });
    return file;
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Size figures of the reproduced /app, kept in docs/operations.md between markers (the base image is not
// reproduced, so its size is not among them).

const OPERATIONS_DOC = join(repoRoot, 'docs/operations.md');
const FIGURES_START = '<!-- generated:image-figures:start (test/integration/image-layout.test.ts) -->';
const FIGURES_END = '<!-- generated:image-figures:end -->';
const RDKAFKA_DIR = 'node_modules/@confluentinc/kafka-javascript';
const RDKAFKA_ADDON = `${RDKAFKA_DIR}/build/Release/confluent-kafka-javascript.node`;

interface ImageFigures {
  appKiB: number;
  nodeModulesKiB: number;
  packages: number;
  rdkafkaKiB: number;
  largest: { name: string; kib: number }[];
}

function duKiB(path: string): number {
  return Number(execFileSync('du', ['-sk', path], { encoding: 'utf8' }).split('\t')[0]);
}

function imageFigures(app: string): ImageFigures {
  const lock = JSON.parse(readFileSync(join(app, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  const shipped = Object.entries(lock.packages).filter(([path, meta]) => path.startsWith('node_modules/') && !meta.dev && existsSync(join(app, path)));
  const topLevel = shipped.map(([path]) => path).filter((path) => !path.slice('node_modules/'.length).includes('node_modules/'));
  const largest = topLevel
    .map((path) => ({ name: path.slice('node_modules/'.length), kib: duKiB(join(app, path)) }))
    .sort((a, b) => b.kib - a.kib)
    .slice(0, 3);
  return { appKiB: duKiB(app), nodeModulesKiB: duKiB(join(app, 'node_modules')), packages: shipped.length, rdkafkaKiB: duKiB(join(app, RDKAFKA_DIR)), largest };
}

const mib = (kib: number) => (kib / 1024).toFixed(1);

function renderImageFigures(f: ImageFigures): string {
  return [
    FIGURES_START,
    '| Measured on the reproduced image (`/app`) | Value |',
    '| --- | --- |',
    `| \`/app\` in total (code, SQL, configuration, dependencies) | ${mib(f.appKiB)} MiB (${f.appKiB} KiB) |`,
    `| Production \`node_modules\` | ${mib(f.nodeModulesKiB)} MiB (${f.nodeModulesKiB} KiB), ${f.packages} packages |`,
    `| of which the librdkafka client (addon + \`librdkafka.so\`) | ${mib(f.rdkafkaKiB)} MiB (${f.rdkafkaKiB} KiB) |`,
    `| Largest packages | ${f.largest.map((p) => `\`${p.name}\` ${mib(p.kib)} MiB`).join(', ')} |`,
    FIGURES_END,
  ].join('\n');
}

function generatedSection(doc: string): string | undefined {
  const start = doc.indexOf(FIGURES_START);
  const end = doc.indexOf(FIGURES_END);
  return start >= 0 && end > start ? doc.slice(start, end + FIGURES_END.length) : undefined;
}

function parseImageFigures(section: string): Pick<ImageFigures, 'appKiB' | 'nodeModulesKiB' | 'packages' | 'rdkafkaKiB'> {
  const kib = (label: RegExp) => Number(new RegExp(`${label.source}[^\\n]*?\\((\\d+) KiB\\)`).exec(section)?.[1]);
  return {
    appKiB: kib(/in total/),
    nodeModulesKiB: kib(/Production `node_modules`/),
    packages: Number(/KiB\), (\d+) packages/.exec(section)?.[1]),
    rdkafkaKiB: kib(/librdkafka client/),
  };
}

function parseDurationSeconds(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value);
  if (!m) throw new Error(`unreadable duration ${value}`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] as 'ms' | 's' | 'm' | 'h'];
}

describe('Dockerfile: what the image declares', () => {
  const text = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
  const stages = parseDockerfile(text);
  const runtime = stages.at(-1)!;
  const config = imageConfig(runtime);
  const baseImage = resolveGlobalArgs(runtime.from, text);

  it('is multi-stage: compiles in one stage, installs production dependencies in another, ships neither toolchain', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const runs = (s: Stage) => s.instructions.filter((i) => i.op === 'RUN').map((i) => i.args);
    expect(stages.some((s) => s !== runtime && runs(s).some((r) => /npm run build/.test(r)))).toBe(true);
    // The runtime stage never installs dependencies itself beyond --omit=dev, and takes only dist/ from the stage that has dev dependencies.
    expect(runs(runtime).filter((r) => /npm (ci|install)\b/.test(r) && !/--omit=dev/.test(r))).toEqual([]);
    const buildStages = stages.filter((s) => runs(s).some((r) => /npm ci\b/.test(r) && !/--omit=dev/.test(r))).map((s) => s.name);
    const fromDevStages = runtime.instructions.filter((i) => i.op === 'COPY').map((i) => splitFlags(i.args)).filter((c) => c.flags.from && buildStages.includes(c.flags.from));
    expect(fromDevStages.map((c) => c.rest)).toEqual(['/app/dist ./dist']);
    // The stage with the dev install passes only the compiled librdkafka client on, never its toolchain or objects.
    const fromBuild = stages
      .filter((s) => s !== runtime)
      .flatMap((s) => s.instructions.filter((i) => i.op === 'COPY').map((i) => splitFlags(i.args)))
      .filter((c) => c.flags.from && buildStages.includes(c.flags.from))
      .flatMap((c) => c.rest.split(/\s+/).slice(0, -1));
    expect(fromBuild.length).toBeGreaterThan(0);
    for (const source of fromBuild) expect(source).toMatch(/^\/app\/node_modules\/@confluentinc\/kafka-javascript\/build\/(Release\/[\w-]+\.node|deps\/librdkafka(\+\+)?\.so\.1)$/);
    // One base image for all stages: an exact Node 24 release on Debian slim (a registry digest may follow).
    expect(new Set(stages.map((s) => s.from)).size).toBe(1);
    expect(baseImage).toMatch(/^node:24\.\d+\.\d+-bookworm-slim(@sha256:[0-9a-f]{64})?$/);
  });

  it('builds the librdkafka client from source against system OpenSSL and zlib, whose runtime libraries the image carries', () => {
    const build = stages.find((s) => s.instructions.some((i) => i.op === 'RUN' && /npm ci\b/.test(i.args) && !/--ignore-scripts/.test(i.args)))!;
    expect(build, 'a stage runs npm ci with install scripts').toBeDefined();
    expect(build).not.toBe(runtime);
    const installs = (s: Stage) => s.instructions.filter((i) => i.op === 'RUN' && /apt-get install/.test(i.args)).map((i) => i.args).join(' ');
    for (const pkg of ['build-essential', 'python3', 'libssl-dev', 'zlib1g-dev', 'libzstd-dev']) expect(installs(build), pkg).toContain(pkg);
    expect(imageConfig(build).env).toMatchObject({ CKJS_LINKING: 'dynamic', npm_config_build_from_source: 'true' });
    for (const pkg of ['libssl3', 'zlib1g', 'libzstd1', 'ca-certificates', 'libjemalloc2']) expect(installs(runtime), pkg).toContain(pkg);
    expect(installs(runtime)).not.toMatch(/-dev\b|build-essential/);
  });

  it('lists in docs/operations.md each system package the runtime stage installs, and only those', () => {
    const installed = runtime.instructions
      .filter((i) => i.op === 'RUN')
      .flatMap((i) => [...i.args.matchAll(/apt-get install\s+([^&]+)/g)].flatMap((m) => m[1]!.split(/\s+/).filter((word) => word !== '' && !word.startsWith('-'))));
    expect(installed.length).toBeGreaterThan(0);
    const listed = /The runtime stage's system packages \(([^)]*)\)/.exec(readFileSync(join(repoRoot, 'docs/operations.md'), 'utf8'))?.[1];
    expect(listed, 'docs/operations.md: the sentence listing the runtime stage\'s system packages').toBeDefined();
    expect(listed!.split(/,\s*/).map((p) => p.replace(/`/g, '')).sort()).toEqual([...installed].sort());
  });

  it('labels the image the OCI way: version (the package version by default), revision and source', () => {
    const labels = Object.fromEntries(
      runtime.instructions.filter((i) => i.op === 'LABEL').flatMap((i) => [...i.args.matchAll(/([\w.-]+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!])),
    );
    const args = Object.fromEntries(runtime.instructions.filter((i) => i.op === 'ARG').map((i) => i.args.split('=') as [string, string]));
    expect(labels['org.opencontainers.image.version']).toBe('${VERSION}');
    expect(args.VERSION).toBe((JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version);
    expect(labels['org.opencontainers.image.revision']).toBe('${REVISION}');
    expect(labels['org.opencontainers.image.source']).toBe('${SOURCE}');
    for (const name of ['REVISION', 'SOURCE']) expect(Object.keys(args)).toContain(name);
  });

  it('runs as a numeric non-root user, under tini, in production mode, with the default command `run`', () => {
    expect(config.user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(config.user!.split(':')[0])).toBeGreaterThan(0);
    expect(config.entrypoint).toEqual(['tini', '--', 'node', '/app/dist/outbox-relay.js']);
    expect(runtime.instructions.some((i) => i.op === 'RUN' && /apt-get install\b.*\btini\b|apk add\b.*\btini\b/.test(i.args))).toBe(true);
    expect(config.cmd).toEqual(['run']);
    expect(config.env.NODE_ENV).toBe('production');
    expect(config.workdir).toBe('/app');
  });

  it('exposes the HTTP port and health-checks /healthz on it with the relay\'s own `health` command', () => {
    expect(config.expose).toEqual([SETTINGS_BY_KEY.get('http.port')!.default]);
    // The entrypoint's node and bin, without tini: the same settings loader as run's, no copy of it in the Dockerfile.
    expect(config.healthcheck).toEqual([...config.entrypoint.slice(config.entrypoint.indexOf('node'), config.entrypoint.indexOf('node') + 2), 'health']);
    expect(config.healthcheckOptions).toHaveProperty('timeout');
  });

  it('copies from the build context only what a clean checkout has and .dockerignore lets through', () => {
    const ignored = dockerignore(repoRoot);
    const sources = stages.flatMap((s) =>
      s.instructions
        .filter((i) => i.op === 'COPY' && !splitFlags(i.args).flags.from)
        .flatMap((i) => splitFlags(i.args).rest.split(/\s+/).slice(0, -1))
        .map((p) => posix.normalize(p).replace(/\/+$/, '')),
    );
    expect(sources.length).toBeGreaterThan(0);
    expect(sources.filter(ignored)).toEqual([]);
    expect(ignored('node_modules/pg/package.json') && ignored('.git/HEAD') && ignored('dist/outbox-relay.js') && ignored('.stack/x') && ignored('.cache/x')).toBe(true);
    if (!existsSync(join(repoRoot, '.git'))) return;
    const tracked = execFileSync('git', ['ls-files', '--', ...sources], { cwd: repoRoot, encoding: 'utf8' }).split('\n').filter(Boolean);
    const missing = sources.filter((s) => !tracked.some((t) => t === s || t.startsWith(`${s}/`)));
    expect(missing, 'COPY sources with nothing committed: a docker build from a clean clone fails with "not found"').toEqual([]);
  });
});
