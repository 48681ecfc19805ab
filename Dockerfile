# syntax=docker/dockerfile:1
#
# outbox-relay container image:   docker build -t outbox-relay .
#
# Base image: node:20-bookworm-slim (Debian 12, glibc) rather than node:20-alpine. Every runtime dependency is
# pure JavaScript, so Alpine would work and is ~60 MB smaller; we still pick Debian slim because
#   * it is the platform the test suite and the benchmarks run on (glibc, Debian), so the image runs what was
#     tested; Node's musl builds are an "experimental" tier upstream;
#   * glibc's resolver and allocator are the ones the relay was measured with (musl's getaddrinfo handles
#     resolv.conf options such as Kubernetes' ndots/search differently; its malloc is slower under load);
#   * slim is still small (no compilers, no docs): about 200 MB before our ~25 MB of dependencies and code.
# See README, "Container and deployment", for the size trade-off and how to switch.
#
# Signals: tini runs as PID 1 (baked in, so it also works on Kubernetes, which has no `docker run --init`). It
# forwards SIGTERM/SIGINT to node, which drains in-flight events (OUTBOX_RELAY_SHUTDOWN_GRACE, default 25s) and
# exits 0; tini exits with node's code. Give the container more than the drain to stop: `docker stop -t 30`,
# compose `stop_grace_period: 30s`, Kubernetes `terminationGracePeriodSeconds: 30`.
#
# test/integration/image-layout.test.ts rebuilds this file's stages without Docker: it reads the stages and
# their WORKDIR, COPY, RUN, ENV, USER, ENTRYPOINT, CMD and HEALTHCHECK lines, reproduces them in a temp dir
# and runs the result. It fails on a RUN it does not know how to reproduce, so teach it when you add one.

ARG NODE_VERSION=20

# ---- build: compile TypeScript (needs the dev dependencies) -------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency needs an install script to compile (TypeScript 7 ships its native compiler as
# a per-platform optional package, resolved by npm without scripts).
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- prod-deps: production dependencies only, from the same lockfile -----------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ---- runtime ---------------------------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
# Bridge until the build stage compiles the librdkafka client (issue 14): this image installs dependencies with
# --ignore-scripts, so the default client (rdkafka) cannot load here and the relay would exit 2; use kafkajs.
ENV OUTBOX_RELAY_KAFKA_CLIENT=kafkajs
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
# No curl in the slim image: node itself probes /healthz (process alive and not wedged). It honours
# OUTBOX_RELAY_HTTP_PORT; with the HTTP server turned off (port 0) run the container with --no-healthcheck.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "require('node:http').get({host: '127.0.0.1', port: Number(process.env.OUTBOX_RELAY_HTTP_PORT || 9464), path: '/healthz', timeout: 4000}, (res) => process.exit(res.statusCode === 200 ? 0 : 1)).on('timeout', () => process.exit(1)).on('error', () => process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["tini", "--", "node", "/app/dist/cli/main.js"]
CMD ["run"]
