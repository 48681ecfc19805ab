import { freePort } from '../../stack/ports.js';
import { waitUntil } from '../../stack/index.js';

export interface HttpReply {
  status: number;
  body: string;
  contentType: string | null;
}

export async function httpGet(url: string, init: RequestInit = {}): Promise<HttpReply> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text(), contentType: res.headers.get('content-type') };
}

/** Flags that give a relay its own HTTP port on loopback; returns the base URL too. */
export async function httpArgs(): Promise<{ base: string; args: string[] }> {
  const port = await freePort();
  return { base: `http://127.0.0.1:${port}`, args: ['--http-port', String(port), '--http-host', '127.0.0.1'] };
}

/** Samples of one metric family from Prometheus text: `name{labels} value` lines. */
export function metricSamples(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  const samples: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    samples.push({ labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of a sample with exactly these labels (undefined when absent). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels);
  return metricSamples(text, name).find((s) => wanted.every(([k, v]) => s.labels[k] === v) && Object.keys(s.labels).length === wanted.length)?.value;
}

export async function scrape(base: string): Promise<string> {
  const reply = await httpGet(`${base}/metrics`);
  if (reply.status !== 200) throw new Error(`/metrics answered ${reply.status}: ${reply.body}`);
  return reply.body;
}

/** Polls an endpoint until `check` accepts its reply; returns that reply. */
export async function waitForEndpoint(url: string, what: string, check: (reply: HttpReply) => boolean, timeoutMs = 30_000): Promise<HttpReply> {
  let last: HttpReply | undefined;
  await waitUntil(
    what,
    async () => {
      last = await httpGet(url).catch(() => undefined);
      return last !== undefined && check(last);
    },
    timeoutMs,
    100,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last reply: ${last ? `${last.status} ${last.body}` : 'none'}`);
  });
  return last!;
}
