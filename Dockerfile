# syntax=docker/dockerfile:1
#
# outbox-relay container image:
#   docker build -t outbox-relay:0.1.0 \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg SOURCE="$(git remote get-url origin)" .
#
# Base image: node:24 (Active LTS until 2026-10-20, maintenance until its end of life on 2028-04-30) on Debian 12
# slim (glibc) rather than Alpine:
#   * it is the platform the test suite and the benchmarks run on (glibc, Debian), so the image runs what was
#     tested; Node's musl builds are an "experimental" tier upstream, and the librdkafka client is built and
#     tested against Debian's OpenSSL and zlib;
#   * glibc's resolver and allocator are the ones the relay was measured with (musl's getaddrinfo handles
#     resolv.conf options such as Kubernetes' ndots/search differently; its malloc is slower under load).
# The tag is an exact release, so a rebuild gets the same Node; docs/operations.md ("Pinning the base image")
# says how to add the registry digest and let CI refresh both.
#
# Signals: tini runs as PID 1 (baked in, so it also works on Kubernetes, which has no `docker run --init`). It
# forwards SIGTERM/SIGINT to node, which drains in-flight events (OUTBOX_RELAY_SHUTDOWN_GRACE, default 25s) and
# exits 0; tini exits with node's code. Give the container more than the drain to stop: `docker stop -t 35`,
# compose `stop_grace_period: 35s`, Kubernetes `terminationGracePeriodSeconds: 35` (the grace, the 5 s after which
# the relay exits by itself, up to 2.5 s for its last log lines when a log reader stalled, and 2.5 s to spare).
#
# test/integration/image-layout.test.ts rebuilds this file's stages without Docker: it reads the stages and
# their WORKDIR, COPY, RUN, ENV, USER, ENTRYPOINT, CMD and HEALTHCHECK lines, reproduces them in a temp dir
# and runs the result. It fails on a RUN it does not know how to reproduce, so teach it when you add one.

ARG NODE_IMAGE=node:24.22.3-bookworm-slim

# ---- build: compile TypeScript and the librdkafka client (needs dev dependencies and a C++ toolchain) ---------
FROM ${NODE_IMAGE} AS build
# Headers and compilers for @confluentinc/kafka-javascript: it builds its bundled librdkafka against Debian's
# OpenSSL, zlib and zstd (CKJS_LINKING=dynamic; its configure finds them with pkg-config), so the runtime stage needs
# only their shared libraries. python3 is node-gyp's. None of this reaches the image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential python3 pkg-config libssl-dev zlib1g-dev libzstd-dev \
 && rm -rf /var/lib/apt/lists/*
ENV CKJS_LINKING=dynamic npm_config_build_from_source=true
WORKDIR /app
COPY package.json package-lock.json ./
# npm ci's postinstall: patches and recompiles the client's addon (a batch of records in one call with its headers
# encoded, lean delivery reports in batches; docs/benchmarks.md measures each step) and librdkafka's broker thread
# (no busy loop while the idempotent producer waits for an answer).
COPY scripts/patch-kafka-client.mjs ./scripts/
# With install scripts: the librdkafka client compiles here (from source, not a downloaded prebuilt binary). Without
# the package's own `prepare` (it builds dist/ after a checkout's npm ci): the sources are copied after this slow
# step, so that changing them does not compile the client again, and `npm run build` follows them.
RUN --mount=type=cache,target=/root/.npm npm pkg delete scripts.prepare && npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build-bin.mjs ./scripts/
COPY src ./src
# Type-checks src/, then bundles it with its dependencies into one file, dist/outbox-relay.js (scripts/build-bin.mjs
# says why: a shorter cold start).
RUN npm run build

# ---- prod-deps: production dependencies only, from the same lockfile -----------------------------------------
# Only what the bundle loads from node_modules at run time: the librdkafka client (a native addon), kafkajs and yaml
# (loaded when a run needs them). The packages bundled into dist/outbox-relay.js are dev dependencies.
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund
# The compiled client from the build stage: the addon and the librdkafka it loads from ../deps (its rpath). The
# object files, static archives and librdkafka's sources stay behind.
COPY --from=build /app/node_modules/@confluentinc/kafka-javascript/build/Release/confluent-kafka-javascript.node ./node_modules/@confluentinc/kafka-javascript/build/Release/
COPY --from=build /app/node_modules/@confluentinc/kafka-javascript/build/deps/librdkafka.so.1 /app/node_modules/@confluentinc/kafka-javascript/build/deps/librdkafka++.so.1 ./node_modules/@confluentinc/kafka-javascript/build/deps/
RUN rm -rf node_modules/@confluentinc/kafka-javascript/deps node_modules/@confluentinc/kafka-javascript/src
# Their debug symbols are most of their size (librdkafka.so.1: 14 MB with, 3 MB without). binutils stays here.
RUN apt-get update \
 && apt-get install -y --no-install-recommends binutils \
 && strip --strip-unneeded node_modules/@confluentinc/kafka-javascript/build/Release/confluent-kafka-javascript.node node_modules/@confluentinc/kafka-javascript/build/deps/librdkafka.so.1 node_modules/@confluentinc/kafka-javascript/build/deps/librdkafka++.so.1 \
 && rm -rf /var/lib/apt/lists/*

# ---- runtime ---------------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="outbox-relay" \
      org.opencontainers.image.description="Transactional outbox relay: PostgreSQL WAL (pgoutput) to Apache Kafka" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
# tini; the shared libraries librdkafka links against (libssl3, zlib1g, libzstd1) and the CA bundle it verifies brokers
# with; jemalloc (below).
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini libssl3 zlib1g libzstd1 ca-certificates libjemalloc2 \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
# jemalloc instead of glibc's allocator: librdkafka allocates each record's copy and headers on the relay's main
# thread and frees them on its own threads, which glibc's arenas pay for in locks and consolidation. Measured
# (docs/benchmarks.md, "jemalloc in the image"): 8-12 % less CPU per event in drains; with two arenas and dirty pages
# returned after 1 s the peak RSS stays within a few MiB of glibc's, under the 150 MB bound. The bench and the memory
# test run the relay with these two lines.
ENV LD_PRELOAD=libjemalloc.so.2 MALLOC_CONF="narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0"
# The heap limits of the `outbox-relay` bin's shebang (src/cli/main.ts), which `node dist/outbox-relay.js` skips: a
# drain stays under 150 MB (docs/benchmarks.md: "Memory, before the caps" and the peak-RSS target). Override NODE_OPTIONS to give the relay more heap.
ENV NODE_OPTIONS="--max-old-space-size=48 --max-semi-space-size=4"
WORKDIR /app
# Owned by root and not writable by the relay's user: the process cannot change its own code. The relay writes
# nothing to disk (logs go to stdout), so a read-only root filesystem works.
COPY package.json package-lock.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY sql ./sql
COPY config ./config
# The base image's `node` user, by number: Kubernetes' runAsNonRoot can only verify a numeric user.
USER 1000:1000
# http.port: /healthz, /readyz, /metrics.
EXPOSE 9464
# No curl in the slim image: the relay's own `health` command probes /healthz (process alive and not wedged), at
# http.port as run resolves it from the environment and OUTBOX_RELAY_CONFIG's file; it cannot see flags given to
# run. It gives up 4 s after it started, within --timeout, and says why. With the HTTP server turned off (port 0)
# it reports unhealthy: run the container with --no-healthcheck.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "/app/dist/outbox-relay.js", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["tini", "--", "node", "/app/dist/outbox-relay.js"]
CMD ["run"]
