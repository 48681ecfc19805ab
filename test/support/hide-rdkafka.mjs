// NODE_OPTIONS="--import <this file>": @confluentinc/kafka-javascript fails to load, as on a machine where its
// native build failed, so tests can check what the relay says then.
import { register } from 'node:module';

const hook = `export async function resolve(specifier, context, next) {
  if (specifier.startsWith('@confluentinc/kafka-javascript')) throw new Error('Could not locate the bindings file (hidden by the test)');
  return next(specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hook)}`);
