import { getHeapStatistics } from 'node:v8';
import { ConfigError } from './load.js';

/**
 * What one event in flight holds on the JavaScript heap, rounded up: its record object, header map and strings,
 * key and value Buffer objects (their bytes live outside the heap). Measured on Node 24 with the bin's heap flags
 * (a 60 MiB heap): a window of 20,000 events drained; one of 50,000 exhausted the heap and V8 aborted the process.
 */
const HEAP_BYTES_PER_EVENT = 1024;
const MIB = 1024 * 1024;

/** How the process was started, as far as the fix depends on it. */
export interface NodeStart {
  /** Node's own flags on the command line (process.execArgv): the bin's shebang puts its heap flags there. */
  execArgv: readonly string[];
  /** The script node runs (process.argv[1]). */
  script: string | undefined;
}

/**
 * The in-flight window must fit in half the heap (the collector needs the rest to work in): a window too large
 * for the process is refused at start with the settings and the fix named, instead of ending, under load, in
 * V8's out-of-memory abort, which logs nothing of ours. The larger heap is asked for where it counts: node reads
 * NODE_OPTIONS first and its command line after, so where the heap flag is on the command line (the outbox-relay
 * bin's shebang) NODE_OPTIONS cannot raise it; the image passes its flags in NODE_OPTIONS.
 */
export function checkWindowFitsHeap(
  maxInFlightEvents: number,
  heapLimitBytes = getHeapStatistics().heap_size_limit,
  start: NodeStart = { execArgv: process.execArgv, script: process.argv[1] },
): void {
  const needed = maxInFlightEvents * HEAP_BYTES_PER_EVENT;
  if (needed <= heapLimitBytes / 2) return;
  const fitting = Math.floor(heapLimitBytes / 2 / HEAP_BYTES_PER_EVENT);
  // The old space to ask for: twice the window, plus what the young generation and the rest of the process take now.
  const oldSpaceMiB = Math.ceil((2 * needed) / MIB / 16) * 16;
  const flags = `--max-old-space-size=${oldSpaceMiB} --max-semi-space-size=4`;
  const onCommandLine = start.execArgv.find((arg) => arg.startsWith('--max-old-space-size'));
  const largerHeap = onCommandLine
    ? `start node with a larger heap on its command line, where this process has ${onCommandLine} (the outbox-relay bin's own flag, which NODE_OPTIONS cannot override): node ${flags} ${start.script ?? '<the outbox-relay script>'} <the same arguments>`
    : `give node a larger heap: NODE_OPTIONS="${flags}" (the image's default is 48)`;
  throw new ConfigError(
    `delivery.maxInFlightEvents ${maxInFlightEvents} needs about ${Math.ceil(needed / MIB)} MiB of JavaScript heap for the events in flight, more than half of this process's ${Math.floor(heapLimitBytes / MIB)} MiB heap`,
    `lower delivery.maxInFlightEvents (--delivery-max-in-flight-events, OUTBOX_RELAY_DELIVERY_MAX_IN_FLIGHT_EVENTS) to at most ${fitting}, or ${largerHeap}, and a memory limit to match`,
  );
}
