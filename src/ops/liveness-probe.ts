import { errorMessage } from '../errors.js';
import { lazyRequire } from '../lazy-require.js';

/**
 * Through require, as in src/http/server.ts, and not fetch: both an ES import of node:http and fetch load node's
 * bundled undici on Node 22 and later, a cost every probe of the image's HEALTHCHECK would pay again.
 */
const http = lazyRequire<typeof import('node:http')>('node:http');

/** As much of a body as an error line shows (the relay's /healthz body is under 100 bytes). */
const BODY_SHOWN = 200;

/** What GET /healthz got: the answer, or why none came. No answer is a state, not an error (as in relay-health.ts). */
export type LivenessAnswer = { answered: true; url: string; httpStatus: number; body: string } | { answered: false; url: string; reason: string };

/**
 * A server listening on every address answers on the loopback. 127.0.0.1 for "::" too: Node's "::" takes IPv4 as
 * well, while a container without IPv6 (Docker's default) has no ::1.
 */
const WILDCARDS = new Set(['0.0.0.0', '::']);

/** Where a command on the relay's host reaches a server listening on http.host `listen`. */
export function localAddress(listen: string): string {
  return WILDCARDS.has(listen) ? '127.0.0.1' : listen;
}

/** http://host:port, an IPv6 address in brackets: the base of the relay's /healthz and /readyz. */
export function relayBaseUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** http://host:port/healthz. */
export function healthzUrl(host: string, port: number): string {
  return `${relayBaseUrl(host, port)}/healthz`;
}

/** GET /healthz at host:port, given up `timeoutMs` later, whether the answer had not begun or not ended by then. */
export function probeLiveness(host: string, port: number, timeoutMs: number): Promise<LivenessAnswer> {
  const url = healthzUrl(host, port);
  return new Promise((resolve) => {
    let answer: { httpStatus: number; body: string } | undefined;
    const settle = (result: LivenessAnswer) => {
      clearTimeout(timer);
      // A body that never ends must not keep the process up after the verdict.
      request.destroy();
      resolve(result);
    };
    // Its own connection (no agent), so nothing is kept alive once it is settled.
    const request = http().get({ host, port, path: '/healthz', agent: false }, (response) => {
      answer = { httpStatus: response.statusCode ?? 0, body: '' };
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        answer!.body = (answer!.body + chunk).slice(0, BODY_SHOWN);
      });
      response.on('end', () => settle({ answered: true, url, ...answer! }));
    });
    request.on('error', (err) => settle(answer ? { answered: true, url, ...answer } : { answered: false, url, reason: errorMessage(err) }));
    // The status decides: a body still coming at the deadline does not turn an answer into none.
    const timer = setTimeout(() => settle(answer ? { answered: true, url, ...answer } : { answered: false, url, reason: `no answer within ${timeoutMs} ms` }), timeoutMs);
  });
}
