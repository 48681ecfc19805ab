import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Where the relay's main thread went in one profiled run (V8's `--cpu-prof`), as shares of its busy time. */
export interface ProfileSummary {
  /** Share of the whole profile the thread was idle (waiting on its event loop). */
  idleShare: number;
  /** The largest items by self time, with their share of the busy time. */
  top: { item: string; share: number }[];
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

/** V8's names for time outside JavaScript functions, in words. */
const NAMED: Record<string, string> = {
  '(garbage collector)': 'garbage collection',
  '(program)': 'native work outside JavaScript',
};

function itemName(frame: CpuProfile['nodes'][number]['callFrame']): string {
  if (NAMED[frame.functionName]) return NAMED[frame.functionName]!;
  const file = frame.url.replace(/^file:\/\//, '').split('/').slice(-2).join('/');
  return `${frame.functionName || '(anonymous)'}${file ? ` (${file})` : ''}`;
}

/** Self time per function of a `.cpuprofile`, the `count` largest as shares of the busy time. */
export function summarizeProfile(profile: CpuProfile, count = 6): ProfileSummary {
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const selfTime = new Map<string, number>();
  let total = 0;
  let idle = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    const frame = frames.get(id)!;
    total += delta;
    if (frame.functionName === '(idle)') {
      idle += delta;
      return;
    }
    const item = itemName(frame);
    selfTime.set(item, (selfTime.get(item) ?? 0) + delta);
  });
  const busy = Math.max(1, total - idle);
  const top = [...selfTime].sort((a, b) => b[1] - a[1]).slice(0, count).map(([item, time]) => ({ item, share: time / busy }));
  return { idleShare: total > 0 ? idle / total : 0, top };
}

/** The one profile a run wrote into `dir`. */
export function readProfile(dir: string): CpuProfile {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length !== 1) throw new Error(`expected one .cpuprofile in ${dir}, found ${files.length}`);
  return JSON.parse(readFileSync(join(dir, files[0]!), 'utf8')) as CpuProfile;
}

/** "produceBatches (sink/rdkafka-produce.js) 29 %, garbage collection 21 %, …". */
export function describeProfile(p: ProfileSummary): string {
  return `${p.top.map((t) => `${t.item} ${Math.round(t.share * 100)} %`).join(', ')} of its busy time (idle ${Math.round(p.idleShare * 100)} % of the run)`;
}
