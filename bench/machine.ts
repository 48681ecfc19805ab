import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { imageAllocatorEnv } from '../stack/image-allocator.js';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  postgres: string;
  kafka: string;
  /** The relay's allocator variables (the image's, from the Dockerfile). Absent in results of runs before it. */
  allocator?: string;
}

export function describeMachine(kafkaVersion: string, pgBin: string): Machine {
  const run = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
    } catch {
      return 'unknown';
    }
  };
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: run('uname', ['-sr']),
    node: process.version,
    postgres: run(`${pgBin}/postgres`, ['--version']),
    kafka: kafkaVersion,
    allocator: Object.entries(imageAllocatorEnv())
      .map(([name, value]) => `${name}=${value}`)
      .join(' '),
  };
}
