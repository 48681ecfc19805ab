import type { ColdStart } from './cold-start.js';
import type { DrainResult } from './drain.js';
import type { Machine } from './machine.js';
import type { SteadyResult } from './steady.js';

export interface Shape {
  name: string;
  rowsPerTxn: number;
  insertSeconds: number;
  recvlogicalEventsPerSecond: number;
  drains: DrainResult[];
}

/** What one `npm run bench` writes to bench/results/<timestamp>.json. */
export interface BenchResults {
  date: string;
  command: string;
  events: number;
  producerEvents: number;
  steadySeconds: number;
  machine: Machine;
  /** Events/s of the bare sink, by client. */
  producer: Record<string, number>;
  coldStarts: ColdStart[];
  shapes: Shape[];
  steady: SteadyResult[];
}
