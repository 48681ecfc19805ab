import type { Metric, Registry } from 'prom-client';

interface Sample {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/**
 * An unlabelled Prometheus histogram whose observations carry a weight: n events acknowledged together count n
 * times at one latency, for the cost of one observation. prom-client's Histogram counts one per call, and a call
 * per event would put a label hash and a bucket search on the hot path of every event.
 */
export class WeightedHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly counts: number[];
  private sum = 0;
  private total = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly upperBounds: readonly number[],
    registry: Registry,
  ) {
    this.counts = upperBounds.map(() => 0);
    registry.registerMetric(this as unknown as Metric);
  }

  observe(value: number, weight: number): void {
    const bounds = this.upperBounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    if (i < bounds.length) this.counts[i]! += weight;
    this.sum += value * weight;
    this.total += weight;
  }

  /** The exposition prom-client's registry formats: cumulative buckets, +Inf, sum and count. */
  get(): { name: string; help: string; type: string; aggregator: string; values: Sample[] } {
    let cumulative = 0;
    const buckets = this.upperBounds.map((le, i): Sample => ({ metricName: `${this.name}_bucket`, labels: { le }, value: (cumulative += this.counts[i]!) }));
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: [
        ...buckets,
        { metricName: `${this.name}_bucket`, labels: { le: '+Inf' }, value: this.total },
        { metricName: `${this.name}_sum`, labels: {}, value: this.sum },
        { metricName: `${this.name}_count`, labels: {}, value: this.total },
      ],
    };
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.total = 0;
  }
}
