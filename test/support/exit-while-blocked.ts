// A child process for relay.pg-hang's forced-exit test: it loads the librdkafka client as the relay does, starts a
// getMetadata (run on libuv's thread pool, timeout 120 s) once the parent has frozen the broker, and half a second
// later logs an error line with the relay's logger and calls the relay's exitNow(1), as a forced exit does. The
// parent runs it with a thread pool of one thread, which the getMetadata holds: a log line written through that pool
// would wait behind it. Argument: the broker. Prints what happened on stdout.
import { createLogger } from '../../src/logger.js';
import { exitNow } from '../../src/process-exit.js';
import { loadRdKafka } from '../../src/sink/rdkafka-client.js';

const kafka = await loadRdKafka();
const producer = new kafka.Producer({ 'metadata.broker.list': process.argv[2]! });
await new Promise<void>((resolve, reject) => producer.connect({}, (err) => (err ? reject(err) : resolve())));
process.on('exit', (code) => process.stdout.write(`exit listener ran, code ${code}\n`));
process.stdout.write('connected\n');
process.stdin.once('data', () => {
  // With what it answered: in one run on a loaded machine it answered before the exit, which a frozen broker cannot.
  producer.getMetadata({ topic: 'any', timeout: 120_000 }, (err) => process.stdout.write(`metadata answered${err ? `: ${err.message} (code ${err.code})` : ''}\n`));
  setTimeout(() => {
    createLogger('info').error({ code: 'SHUTDOWN_FORCED' }, 'second signal: exiting now');
    exitNow(1);
  }, 500);
});
