import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { offHistory, parseTimelineHistory, readTimelineHistory } from '../../src/source/timeline.js';

// A server on timeline 3: it left timeline 1 at 0/3000158 and timeline 2 at 0/5000000 (as 00000003.history says).
const HISTORY = '1\t0/3000158\tno recovery target specified\n\n# a comment\n2\t0/5000000\tbefore 2026-12-05 07:00:00+00\n';
const server = { timeline: 3, switchpoints: parseTimelineHistory(HISTORY) };

describe('timeline history', () => {
  it('reads each earlier timeline and where the server left it, skipping blank and comment lines', () => {
    expect(server.switchpoints).toEqual(
      new Map([
        [1, 0x3000158n],
        [2, 0x5000000n],
      ]),
    );
  });

  it('a position is in this server\'s WAL on its own timeline, and on an earlier one up to where it left that one', () => {
    expect(offHistory({ lsn: 0x9000000n, timeline: 3 }, server)).toBeUndefined();
    expect(offHistory({ lsn: 0x3000158n, timeline: 1 }, server)).toBeUndefined();
    expect(offHistory({ lsn: 0x4000000n, timeline: 2 }, server)).toBeUndefined();
    // Not known (a checkpoint of an older version, a --start-lsn): not checked.
    expect(offHistory({ lsn: 0x9000000n, timeline: undefined }, server)).toBeUndefined();
  });

  it('past where the server left the position\'s timeline, or on a timeline it never had, it is another server\'s WAL', () => {
    expect(offHistory({ lsn: 0x3000159n, timeline: 1 }, server)).toBe("this PostgreSQL (timeline 3) left timeline 1 at 0/3000158: the WAL past it is another server's");
    expect(offHistory({ lsn: 0x5000001n, timeline: 2 }, server)).toBe("this PostgreSQL (timeline 3) left timeline 2 at 0/5000000: the WAL past it is another server's");
    expect(offHistory({ lsn: 0x1000n, timeline: 4 }, server)).toBe('timeline 4 is not in the history of this PostgreSQL, which is on timeline 3');
    expect(offHistory({ lsn: 0x1000n, timeline: 2 }, { timeline: 1, switchpoints: new Map() })).toBe('timeline 2 is not in the history of this PostgreSQL, which is on timeline 1');
  });

  it('asks IDENTIFY_SYSTEM, and TIMELINE_HISTORY only past the first timeline (which has no history file)', async () => {
    const asked: string[] = [];
    const answering = (timeline: number, content: string | Buffer) => ({
      query: async <T>(sql: string) => {
        asked.push(sql);
        return (sql === 'IDENTIFY_SYSTEM' ? [{ systemid: '7', timeline, xlogpos: '0/100', dbname: 'app' }] : [{ filename: 'x', content }]) as T[];
      },
    });
    expect(await readTimelineHistory(answering(1, '') as never)).toEqual({ timeline: 1, switchpoints: new Map() });
    expect(asked).toEqual(['IDENTIFY_SYSTEM']);
    // The content column is text on some server versions and bytea on others.
    for (const content of [HISTORY, Buffer.from(HISTORY)]) expect(await readTimelineHistory(answering(3, content) as never)).toEqual(server);
    expect(asked.slice(1)).toEqual(['IDENTIFY_SYSTEM', 'TIMELINE_HISTORY 3', 'IDENTIFY_SYSTEM', 'TIMELINE_HISTORY 3']);
  });

  it('a history file the server cannot send (removed by hand) leaves other timelines\' positions unchecked, as before; a lost connection fails the session', async () => {
    const missing = Object.assign(new pg.DatabaseError('could not open file "pg_wal/00000003.history": No such file or directory', 0, 'error'), { code: '58P01' });
    const failing = (error: Error) => ({ query: async <T>(sql: string) => (sql === 'IDENTIFY_SYSTEM' ? [{ timeline: 3 }] : Promise.reject(error)) as T[] });
    const history = await readTimelineHistory(failing(missing) as never);
    expect(history).toEqual({ timeline: 3, switchpoints: undefined });
    expect(offHistory({ lsn: 0x9000000n, timeline: 1 }, history)).toBeUndefined();
    await expect(readTimelineHistory(failing(new Error('Connection terminated unexpectedly')) as never)).rejects.toThrow('Connection terminated unexpectedly');
  });
});
