import { fstatSync, writeSync } from 'node:fs';
import type { DestinationStream } from 'pino';

/** Log bytes held while the reader of the pipe does not read: a pipe takes 64 KiB, this 1 MiB more (the heap is capped). */
export const LOG_HELD_BYTES = 1024 * 1024;
/** How often held lines are offered to the pipe again while no new line comes. */
const RETRY_MS = 100;
/**
 * At the exit, how long the held lines wait for the reader before the rest is given up: in all, not without
 * progress, as the 'exit' listener runs synchronously and nothing cuts it (the shutdown watchdog, a second signal);
 * a reader taking a little at a time kept the process up for as long as it took the 1 MiB.
 */
const EXIT_WAIT_MS = 5_000;
const EXIT_PAUSE_MS = 10;
/** The latest time the exit waits for the reader, whatever is left of EXIT_WAIT_MS then: see finishHeldLogBy. */
let exitBy = Infinity;

/**
 * A stop signal came: every exit from now on, the shutdown watchdog's included, gives up the held lines at `time`
 * at the latest (cli/signals.ts), so that the process is gone before the orchestrator's SIGKILL. The exit's own
 * EXIT_WAIT_MS came on top of the watchdog's deadline.
 */
export function finishHeldLogBy(time: number): void {
  exitBy = time;
}

export interface PipeDestination extends DestinationStream {
  /** Told, once lines were dropped, how many: the logger logs that as a line, which goes where they were. */
  onDropped?: (count: number) => void;
}

/**
 * The log on stdout when it is a pipe or a socket (a shell's `|`, the FIFO a container runtime reads, journald's
 * socket, Node's child pipes), written without blocking. A synchronous write to a pipe whose reader stays open and
 * stops reading waits until it reads (or, as Node has made the pipe non-blocking for process.stdout, sonic-boom
 * sleeps and tries again): the whole relay froze, timers late and the walsender's keepalives unanswered. fd 1
 * itself is written: it is non-blocking once Node has set up process.stdout on it (libuv opens a pipe or a socket
 * non-blocking, for the description fd 1 shares with stderr under `2>&1` too), which main.ts has done for every
 * command by the time it logs, and which touching process.stdout here makes sure of. (A second, non-blocking
 * description opened through /proc/self/fd fails with EACCES where it matters most: a container runtime creates
 * the container's stdout pipe as root, mode 0600, and our image runs the relay as USER 1000.) What the pipe does
 * not take at once is held, up to `limit` bytes, and offered again every RETRY_MS. Beyond that the oldest held
 * lines are dropped, the newest kept (they say how things stand, the last of them why the process exits), and a
 * line counting them takes their place. At the exit the held lines are written, waiting for the reader: the
 * process's last line is out when the pipe is read, and what it has not taken EXIT_WAIT_MS after the exit began is
 * given up. A write that fails otherwise (EPIPE: the reader closed it) hands `onError` every line the pipe did not
 * take whole. Undefined for a file or a terminal, which keep the synchronous write: a file never makes a writer
 * wait for a reader.
 */
export function nonBlockingStdout(onError: (err: NodeJS.ErrnoException, unwritten: string[]) => void, limit = LOG_HELD_BYTES): PipeDestination | undefined {
  const fd = 1;
  try {
    const stat = fstatSync(fd);
    if (!stat.isFIFO() && !stat.isSocket()) return undefined;
  } catch {
    return undefined;
  }
  void process.stdout;
  let held: Buffer[] = [];
  /** How much of the first held line the pipe has taken. */
  let offset = 0;
  let heldBytes = 0;
  let dropped = 0;
  let failed = false;
  let retry: NodeJS.Timeout | undefined;
  /** Where the line counting the dropped ones goes while it is written: after the line the pipe has begun. */
  let noteAt: number | undefined;

  /** Writes the held lines while the pipe takes them: true when none is left. */
  const drain = (): boolean => {
    while (held.length > 0) {
      const line = held[0]!;
      let written: number;
      try {
        written = writeSync(fd, line, offset);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return false;
        // The logger goes on elsewhere (stderr), and the held lines with it, whole, the last one among them.
        failed = true;
        const unwritten = held.map((bytes) => bytes.toString());
        held = [];
        heldBytes = 0;
        onError(err as NodeJS.ErrnoException, unwritten);
        return true;
      }
      heldBytes -= written;
      offset += written;
      if (offset === line.length) {
        held.shift();
        offset = 0;
        // The dropped lines were the ones after it (the oldest but the first go): the line counting them comes next.
        noteDropped(0);
      }
    }
    return true;
  };

  /**
   * The line counting the dropped lines, written by the logger through write(), at `at` in the hold: where they
   * were, right after the line the pipe has begun. While running it is made once that line is out and goes first,
   * where no drop takes it (at index 1 it would be the next line to drop); at the exit at once, after that line,
   * so that a pipe that fails hands it over with the rest.
   */
  const noteDropped = (at: number): void => {
    if (dropped === 0 || failed) return;
    const count = dropped;
    dropped = 0;
    noteAt = at;
    destination.onDropped?.(count);
    noteAt = undefined;
  };

  const flush = (): void => {
    clearTimeout(retry);
    retry = undefined;
    if (!drain()) retry = setTimeout(flush, RETRY_MS).unref();
  };

  const destination: PipeDestination = {
    write(line: string) {
      if (failed) return;
      const bytes = Buffer.from(line);
      heldBytes += bytes.length;
      if (noteAt !== undefined) {
        held.splice(noteAt, 0, bytes);
        return;
      }
      held.push(bytes);
      // The oldest go, but not the first while the pipe has taken part of it.
      while (heldBytes > limit && held.length > 1) {
        heldBytes -= held.splice(1, 1)[0]!.length;
        dropped++;
      }
      if (retry === undefined) flush();
    },
  };

  const pause = new Int32Array(new SharedArrayBuffer(4));
  process.on('exit', () => {
    clearTimeout(retry);
    noteDropped(Math.min(1, held.length));
    const giveUpAt = Math.min(Date.now() + EXIT_WAIT_MS, exitBy);
    while (!drain()) {
      if (Date.now() >= giveUpAt) return;
      Atomics.wait(pause, 0, 0, EXIT_PAUSE_MS);
    }
  });
  return destination;
}
