import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { OutageLog, RepeatedLines } from '../../src/outage-log.js';

type Line = { level: number; msg: string; [field: string]: unknown };

function recorder() {
  const lines: Line[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Line) });
  let now = 1_000;
  const clock = { advance: (ms: number) => (now += ms), now: () => now };
  return { lines, logger, clock };
}

const LINES = { started: 'cannot do it: retrying', ongoing: 'still cannot do it', ended: 'done again' };

describe('outage log', () => {
  it('one warn line when an outage starts, each later attempt at debug with its number, one info line with its length and attempts when it ends', () => {
    const { lines, logger, clock } = recorder();
    const outage = new OutageLog(logger, LINES, clock.now);
    expect(outage.failed({ code: 'KAFKA_UNAVAILABLE', retryInMs: 10 })).toBe(true);
    clock.advance(400);
    expect(outage.failed({ code: 'KAFKA_UNAVAILABLE', retryInMs: 20 })).toBe(false);
    clock.advance(600);
    expect(outage.failed({ code: 'KAFKA_UNAVAILABLE', retryInMs: 40 })).toBe(false);
    expect(outage.attempts).toBe(3);
    expect(outage.downMs()).toBe(1000);
    clock.advance(500);
    expect(outage.recovered({ topic: 't' })).toBe(true);
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [40, LINES.started],
      [20, LINES.ongoing],
      [20, LINES.ongoing],
      [30, LINES.ended],
    ]);
    expect(lines[0]).toMatchObject({ code: 'KAFKA_UNAVAILABLE', retryInMs: 10 });
    expect(lines.slice(1, 3).map((l) => l.attempt)).toEqual([2, 3]);
    expect(lines[3]).toMatchObject({ downMs: 1500, attempts: 3, topic: 't' });
    expect([outage.down, outage.attempts, outage.downMs()]).toEqual([false, 0, 0]);
  });

  it('nothing to end without an outage; after one ended, the next failure starts a new one with its own warn line and count', () => {
    const { lines, logger, clock } = recorder();
    const outage = new OutageLog(logger, LINES, clock.now);
    expect(outage.recovered()).toBe(false);
    expect(lines).toEqual([]);
    outage.failed({});
    outage.failed({});
    outage.recovered();
    clock.advance(100);
    expect(outage.failed({})).toBe(true);
    clock.advance(50);
    outage.recovered();
    expect(lines.map((l) => l.msg)).toEqual([LINES.started, LINES.ongoing, LINES.ended, LINES.started, LINES.ended]);
    expect(lines[4]).toMatchObject({ downMs: 50, attempts: 1 });
  });

  it('an attempt may name its own cause (the loop meets several), and the end line may carry the caller’s own figures', () => {
    const { lines, logger } = recorder();
    const outage = new OutageLog(logger, LINES);
    outage.failed({}, { started: 'Kafka side: retrying', ongoing: 'Kafka side still down' });
    outage.failed({}, { started: 'Kafka side: retrying', ongoing: 'Kafka side still down' });
    outage.failed({});
    outage.recovered({ downMs: 7, attempts: 9 });
    expect(lines.map((l) => l.msg)).toEqual(['Kafka side: retrying', 'Kafka side still down', LINES.ongoing, LINES.ended]);
    expect(lines[3]).toMatchObject({ downMs: 7, attempts: 9 });
  });

  it('a line an attempt repeats word for word is logged at debug; one that says something new at info, each message on its own', () => {
    const { lines, logger } = recorder();
    const repeated = new RepeatedLines(logger);
    repeated.info({ lsn: '0/10' }, 'checkpoint read');
    repeated.info({ lsn: '0/10' }, 'checkpoint read');
    repeated.info({ lsn: '0/20' }, 'start position chosen');
    repeated.info({ lsn: '0/20' }, 'checkpoint read');
    repeated.info({ lsn: '0/20' }, 'start position chosen');
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [30, 'checkpoint read'],
      [20, 'checkpoint read'],
      [30, 'start position chosen'],
      [30, 'checkpoint read'],
      [20, 'start position chosen'],
    ]);
  });
});
