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
import { exitNow } from '../process-exit.js';

/** The signals that stop a command: SIGTERM from an orchestrator, SIGINT from Ctrl-C. */
const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/**
 * What came while the bin was loading, in order: two at most, as a second stop signal means "exit now" (cli/signals.ts);
 * more add nothing.
 */
let received: NodeJS.Signals[] = [];
const record = (signal: NodeJS.Signals): void => {
  if (received.length < 2) received.push(signal);
};
for (const signal of STOP_SIGNALS) process.on(signal, record);

/**
 * A command that ends by itself, its event loop empty, has Node tear the process down, and that lets go of every
 * signal listener before the process exits: a stop signal then met Node's default, an exit by the signal (exit code
 * null; 130 or 143 in a shell) in place of the code the command had set and reported, as a second Ctrl-C after
 * republish had printed INTERRUPTED did. Ending it here through process.exit() (exitNow), with the code set, keeps the
 * listeners in place to the end: a signal that comes then is caught, and changes nothing.
 */
process.once('beforeExit', () => exitNow());

/** Removes the listeners and returns the signals they received, once: they are handed to one listener. */
function takeEarlySignals(): NodeJS.Signals[] {
  for (const signal of STOP_SIGNALS) process.removeListener(signal, record);
  const signals = received;
  received = [];
  return signals;
}

/**
 * What a stop signal meets once a command's listener is removed (an operator command done, its result printed and
 * its exit code set; replay's until its relay runs): nothing. With no listener left it met Node's default, an exit
 * by the signal in place of the code set, in the time the process still took to end (closing its clients, or up to
 * exitSoonAfterClose's 2 s after an INTERRUPTED line, when a second Ctrl-C is most likely).
 */
const ignore = (): void => undefined;

/**
 * Installs `listener` for the stop signals, then hands it the signals received while the bin was loading, if any,
 * as if they came now (two Ctrl-C during the start are a second signal, as later). Added before the early
 * listeners are removed, so that a signal still on its way is delivered to it, never to no listener (Node's
 * default). Returns what removes it, leaving `ignore` in its place for the same reason.
 */
export function onStopSignals(listener: (signal: NodeJS.Signals) => void): () => void {
  for (const signal of STOP_SIGNALS) process.on(signal, listener);
  for (const early of takeEarlySignals()) listener(early);
  return () => {
    for (const signal of STOP_SIGNALS) {
      if (!process.listeners(signal).includes(ignore)) process.on(signal, ignore);
      process.removeListener(signal, listener);
    }
  };
}
