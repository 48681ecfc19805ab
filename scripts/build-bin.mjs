// `npm run build`: bundles the relay (src/cli/main.ts and everything it imports, dependencies included) into one
// ES module, dist/outbox-relay.js, the `outbox-relay` bin and the image's entrypoint.
//
// Why one file: a start spent most of its time in node's module loader, resolving, reading and compiling files one
// by one: `outbox-relay --help` opened 398 .js and package.json files of tsc's output and the packages it imports,
// the bundle 3. Bundled, `--help` and the load step of a cold start took 70-120 ms less on a slow host, and
// another 60 ms less with zod's tree-shakable build (docs/benchmarks.md, "One file to load").
//
//   node scripts/build-bin.mjs                      # dist/outbox-relay.js (dist/ is emptied first)
//   node scripts/build-bin.mjs --outfile <path>     # elsewhere (the memory test's build); the file must sit one
//                                                   # level below the package root, as dist/ does, since it
//                                                   # reads ../package.json and resolves node_modules from there
import { chmodSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const at = process.argv.indexOf('--outfile');
const outfile = at > 0 ? resolve(process.argv[at + 1]) : join(root, 'dist/outbox-relay.js');
if (at < 0) rmSync(join(root, 'dist'), { recursive: true, force: true });

await build({
  entryPoints: [join(root, 'src/cli/main.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  // The machine's Node runs the memory test on this file; the image and the bench run Node 24.
  target: 'node20',
  // Loaded from node_modules, so they are package.json's only dependencies (everything else it bundles is a dev
  // dependency, kept out of the image): the librdkafka client, a native addon that finds its .node file relative to
  // its own package; kafkajs and yaml, which only some runs load, on first use (src/lazy-require.ts). pg's optional
  // native binding is not installed.
  external: ['@confluentinc/kafka-javascript', 'kafkajs', 'yaml', 'pg-native'],
  // The CommonJS packages bundled in (pg, pino, prom-client, commander) call require() for node's own modules,
  // which an ES module has no binding for.
  banner: { js: "import { createRequire as __outboxRelayRequire } from 'node:module'; const require = __outboxRelayRequire(import.meta.url);" },
  // Function and class names as in the source: stack traces, error names and CPU profiles read the same.
  keepNames: true,
  logLevel: 'warning',
});
// The bin: npm links it executable on install, a checkout's build is run directly too.
chmodSync(outfile, 0o755);
