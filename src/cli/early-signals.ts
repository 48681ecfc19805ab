/**
 * Node's default for SIGTERM and SIGINT ends the process at once: exit 143 or 130, and not a line. Until `run`
 * installs its handlers (cli/signals.ts), the bin is still loading, 100–300 ms of a start on a busy node: a pod
 * deleted as it starts ended that way, with nothing in its log. This module is main.ts's first import, so its
 * listeners are in place before the rest of the bin is evaluated. They only record the signal: `run` takes it over
 * and stops its start with the usual lines and exit 0, `republish` stops before its first event, `replay` and an
 * operator command (cli/ops-interrupt.ts) fail with INTERRUPTED before their first statement. `config`, which reads
 * and prints without waiting for anything, and help or a usage error, finish as if no signal had come: none of
 * them exits with Node's default, which would end the process with no line.
 */
/** The signals that stop a command: SIGTERM from an orchestrator, SIGINT from Ctrl-C. */
const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

let received: NodeJS.Signals | undefined;
const record = (signal: NodeJS.Signals): void => {
  received ??= signal;
};
for (const signal of STOP_SIGNALS) process.on(signal, record);

/** Removes the listeners and returns the first signal they received, if any, once: it is handed to one listener. */
function takeEarlySignal(): NodeJS.Signals | undefined {
  for (const signal of STOP_SIGNALS) process.removeListener(signal, record);
  const signal = received;
  received = undefined;
  return signal;
}

/**
 * Installs `listener` for the stop signals, then hands it a signal received while the bin was loading, if any, as
 * if it came now. Added before the early listeners are removed, so that a signal still on its way is delivered to
 * it, never to no listener (Node's default). Returns what removes it.
 */
export function onStopSignals(listener: (signal: NodeJS.Signals) => void): () => void {
  for (const signal of STOP_SIGNALS) process.on(signal, listener);
  const early = takeEarlySignal();
  if (early !== undefined) listener(early);
  return () => {
    for (const signal of STOP_SIGNALS) process.removeListener(signal, listener);
  };
}
