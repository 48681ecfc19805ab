import { getHeapStatistics } from 'node:v8';
import { ConfigError } from './load.js';

/**
 * What one event in flight holds on the JavaScript heap, rounded up: its record object, header map and strings,
 * key and value Buffer objects (their bytes live outside the heap). Measured on Node 24 with the bin's heap flags
 * (a 60 MiB heap): a window of 20,000 events drained; one of 50,000 exhausted the heap and V8 aborted the process.
 */
const HEAP_BYTES_PER_EVENT = 1024;
const MIB = 1024 * 1024;

/**
 * The in-flight window must fit in half the heap (the collector needs the rest to work in): a window too large
 * for the process is refused at start with the settings and the fix named, instead of ending, under load, in
 * V8's out-of-memory abort, which logs nothing of ours.
 */
export function checkWindowFitsHeap(maxInFlightEvents: number, heapLimitBytes = getHeapStatistics().heap_size_limit): void {
  const needed = maxInFlightEvents * HEAP_BYTES_PER_EVENT;
  if (needed <= heapLimitBytes / 2) return;
  const fitting = Math.floor(heapLimitBytes / 2 / HEAP_BYTES_PER_EVENT);
  // The old space to ask for: twice the window, plus what the young generation and the rest of the process take now.
  const oldSpaceMiB = Math.ceil((2 * needed) / MIB / 16) * 16;
  throw new ConfigError(
    `delivery.maxInFlightEvents ${maxInFlightEvents} needs about ${Math.ceil(needed / MIB)} MiB of JavaScript heap for the events in flight, more than half of this process's ${Math.floor(heapLimitBytes / MIB)} MiB heap`,
    `lower delivery.maxInFlightEvents (--delivery-max-in-flight-events, OUTBOX_RELAY_DELIVERY_MAX_IN_FLIGHT_EVENTS) to at most ${fitting}, or give node a larger heap: NODE_OPTIONS="--max-old-space-size=${oldSpaceMiB} --max-semi-space-size=4" (the image's default is 48) and a memory limit to match`,
  );
}
