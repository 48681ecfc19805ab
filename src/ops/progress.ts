import type { Logger } from 'pino';

export interface Progress {
  update(done: number): void;
  finish(): void;
}

/** Log lines at most this often when no one watches a terminal: enough to see it move, few enough to read. */
const LOG_EVERY_MS = 5000;
const BAR_WIDTH = 30;

/**
 * Progress of a long operator command: a `\r`-updated bar when stdout is a terminal, JSON log lines otherwise
 * (a container's log collector would store every redraw of a bar).
 */
export function createProgress(what: string, total: number, logger: Logger, tty = process.stdout.isTTY === true): Progress {
  const started = Date.now();
  const rate = (done: number) => Math.round(done / Math.max(0.001, (Date.now() - started) / 1000));
  if (tty) {
    const draw = (done: number) => {
      const share = total > 0 ? Math.min(1, done / total) : 1;
      const filled = Math.round(share * BAR_WIDTH);
      process.stdout.write(`\r${what} [${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${done}/${total} ${Math.round(share * 100)}% ${rate(done)}/s `);
    };
    let last = 0;
    return {
      update: (done) => {
        last = done;
        draw(done);
      },
      finish: () => {
        draw(last);
        process.stdout.write('\n');
      },
    };
  }
  let lastLog = 0;
  return {
    update: (done) => {
      if (Date.now() - lastLog < LOG_EVERY_MS) return;
      lastLog = Date.now();
      logger.info({ done, total, perSecond: rate(done) }, `${what}: progress`);
    },
    finish: () => undefined,
  };
}
