/**
 * Node's process.exit() first lets every running job of libuv's thread pool finish, and the librdkafka client runs
 * its blocking calls there (connect, metadata, flush, the admin and consumer calls), each up to its timeout: with a
 * broker that stopped answering, an exit came 29.5 s after process.exit(1). The patched addon's static
 * `Producer.outboxExit(code)` (scripts/patch-kafka-client.mjs, change 6) ends the process at once; loading the
 * librdkafka client registers it here. Without it (kafkajs, an unpatched addon) this is process.exit().
 */
type NativeExit = (code: number) => void;

let nativeExit: NativeExit | undefined;

export function useNativeExit(exit: NativeExit): void {
  nativeExit = exit;
}

/**
 * For the exits that must not wait (a second signal, the shutdown watchdog): `code`, else the exit code set so
 * far. The 'exit' listeners run first, as process.exit() runs them. The logger writes each line at once (logger.ts),
 * or on a pipe whose reader is behind holds it until an 'exit' listener writes it (log-pipe.ts): the line that gave
 * the reason is out before the process ends.
 */
export function exitNow(code?: number): never {
  const exitCode = code ?? Number(process.exitCode ?? 0);
  if (nativeExit) {
    process.exitCode = exitCode;
    process.emit('exit', exitCode);
    nativeExit(exitCode);
  }
  return process.exit(exitCode);
}

/** How long a command that closed what it opened waits for its clients to let go before it exits regardless. */
const EXIT_AFTER_CLOSE_MS = 2000;

/**
 * For a command whose result is set and whose clients are closed or given up on: the process ends by itself once
 * they let go. kafkajs can still hold a timer for a request to a broker that stopped answering (until
 * kafka.requestTimeout), which kept run, replay and republish up after their last line until the shutdown
 * watchdog's exit 1 (shutdownGrace + 5 s: 125 s after replay's error line with a 120 s grace). After a moment it
 * exits regardless with the code set (every log line is written, or held for the exit: logger.ts), without waiting for a
 * librdkafka call still blocked on such a broker.
 */
export function exitSoonAfterClose(): void {
  setTimeout(() => exitNow(), EXIT_AFTER_CLOSE_MS).unref();
}
