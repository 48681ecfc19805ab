import { loadConfig } from '../../src/config/relay-config.js';

/** The relay's configuration from flags (brokers given, as run requires), env and a file, as the CLI loads it. */
export const load = (flags: Record<string, unknown>, env: Record<string, string> = {}, configFile?: string) => loadConfig({ flags: { 'kafka.brokers': 'k:9092', ...flags }, env, configFile });

/** What loading refused: the error's code, message and fix. */
export function refusal(run: () => unknown): { code: string; message: string; hint: string | undefined } {
  try {
    run();
  } catch (err) {
    const e = err as { code: string; message: string; hint?: string };
    return { code: e.code, message: e.message, hint: e.hint };
  }
  throw new Error('expected the configuration to be refused');
}
