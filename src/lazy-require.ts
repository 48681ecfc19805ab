import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * A CommonJS module loaded on first use instead of at start. For the packages only some runs need: kafkajs
 * (143 modules, the fallback client) and yaml (72, for a YAML config file) were 215 of the 372 modules every start
 * loaded, whatever the command or client (docs/benchmarks.md, "Cold start"). And for node:http, whose ES import
 * costs more than its require (src/http/server.ts).
 */
export function lazyRequire<T>(id: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(id) as T);
}
