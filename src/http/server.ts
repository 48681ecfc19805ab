import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { RelayError, errorMessage } from '../errors.js';
import { lazyRequire } from '../lazy-require.js';
import type { RelayMetrics } from '../metrics/relay-metrics.js';
import type { RelayHealth, RelayView } from './health.js';

/**
 * Through require, not an ES import: importing node:http as an ES module reads every export, WebSocket's lazy
 * getter too, which loads node's bundled undici on Node 22 and later (nodejs/node#59686): 1.3 MiB more heap after
 * a start (docs/benchmarks.md), for a client the relay never uses.
 */
const http = lazyRequire<typeof import('node:http')>('node:http');

export interface OpsServerDeps {
  logger: Logger;
  relay: RelayView;
  health: RelayHealth;
  metrics: RelayMetrics;
}

export interface OpsServer {
  /** http://host:port as bound. */
  readonly url: string;
  close(): Promise<void>;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** The path of a request target, origin form (`/metrics?x`) or absolute form (`http://host:9464/metrics`), which HTTP/1.1 servers must accept; undefined when it is no URL. */
function pathOf(target: string): string | undefined {
  try {
    return new URL(target, 'http://relay').pathname;
  } catch {
    return undefined;
  }
}

function route(req: IncomingMessage, res: ServerResponse, deps: OpsServerDeps): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  const path = pathOf(req.url ?? '/');
  if (path === undefined) {
    sendJson(res, 400, { error: 'bad request target' });
    return;
  }
  switch (path) {
    case '/healthz': {
      const liveness = deps.health.liveness(deps.relay);
      sendJson(res, liveness.alive ? 200 : 503, liveness);
      return;
    }
    case '/readyz': {
      const readiness = deps.health.readiness(deps.relay);
      sendJson(res, readiness.ready ? 200 : 503, readiness);
      return;
    }
    case '/metrics':
      deps.metrics.render(deps.relay).then(
        (text) => {
          res.writeHead(200, { 'content-type': deps.metrics.contentType });
          res.end(text);
        },
        (err: unknown) => {
          deps.logger.error({ err: errorMessage(err) }, 'collecting metrics failed');
          sendJson(res, 500, { error: errorMessage(err) });
        },
      );
      return;
    default:
      sendJson(res, 404, { error: 'not found', endpoints: ['/healthz', '/readyz', '/metrics'] });
  }
}

/** What fixes a listen that failed: the host for an address this machine does not have, else the port. */
function listenFix(err: NodeJS.ErrnoException): string {
  const port = 'choose a free port with --http-port / OUTBOX_RELAY_HTTP_PORT (setting http.port), or 0 to turn the HTTP server off';
  switch (err.code) {
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'set http.host (--http-host / OUTBOX_RELAY_HTTP_HOST) to an address of this host, or :: to listen on all of them';
    case 'EACCES':
      return `a port below 1024 needs privileges the relay does not have: ${port}`;
    default:
      return port;
  }
}

/** Probes and scrapers each keep a connection or two; far more is a client gone wrong. */
export const MAX_CONNECTIONS = 64;

/** The health and metrics endpoints on Node's own http server; resolves once listening. */
export async function startOpsServer(address: { host: string; port: number }, deps: OpsServerDeps): Promise<OpsServer> {
  const server: Server = http().createServer((req, res) => route(req, res, deps));
  // A client that opens connections without end (a broken scraper, a scan) must not use up the relay's file
  // descriptors, which its PostgreSQL and Kafka connections need: past this many, the server closes new ones.
  server.maxConnections = MAX_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        new RelayError('CONFIG_INVALID', `cannot listen on ${address.host}:${address.port} for /healthz, /readyz and /metrics: ${err.message}`, {
          cause: err,
          hint: listenFix(err),
        }),
      ),
    );
    // "::" as Node's own default (no host): the same dual-stack socket (libuv clears IPV6_V6ONLY, whatever the
    // net.ipv6.bindv6only sysctl says), and where the kernel has no IPv6 (ipv6.disable=1) Node binds 0.0.0.0
    // instead of failing with EAFNOSUPPORT, as an explicit "::" does.
    server.listen(address.port, address.host === '::' ? undefined : address.host, resolve);
  });
  server.on('error', (err) => deps.logger.error({ err: err.message }, 'HTTP server error'));
  const bound = server.address() as AddressInfo;
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  const url = `http://${host}:${bound.port}`;
  deps.logger.info({ url, endpoints: ['/healthz', '/readyz', '/metrics'] }, 'health and metrics endpoints listening');
  return {
    url,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Scrapers and probes keep their connections alive; none of them may hold up the exit.
        server.closeAllConnections();
      }),
  };
}
