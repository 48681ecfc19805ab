import { describe, expect, it } from 'vitest';
import { STANDBY_FIX, pgRefusal } from '../../src/ops/pg-refusals.js';
import { standbyError } from '../../src/ops/primary.js';

describe("PostgreSQL's refusals map to a code with a fix", () => {
  it('names the SQLSTATE, keeps the message and gives the fix for the refusals operator commands meet', () => {
    const limit = pgRefusal('53400', 'all replication slots are in use', undefined)!;
    expect(limit.code).toBe('PG_QUERY_FAILED');
    expect(limit.message).toBe('PostgreSQL refused the operation (SQLSTATE 53400): all replication slots are in use');
    expect(limit.hint).toMatch(/max_replication_slots/);
    expect(pgRefusal('55000', 'logical decoding requires wal_level >= logical', undefined)).toMatchObject({ code: 'PG_WAL_LEVEL' });
    expect(pgRefusal('55006', 'replication slot "s" is active for PID 7', undefined)).toMatchObject({ code: 'PG_SLOT_ACTIVE' });
    expect(pgRefusal('25006', 'cannot execute in a read-only transaction', undefined)!.hint).toMatch(/primary/);
    expect(pgRefusal('57014', 'canceling statement due to statement timeout', undefined)!.hint).toMatch(/--postgres-statement-timeout/);
  });

  it("says a standby's 55000 (pg_current_wal_lsn(), logical decoding in recovery) is a standby, not wal_level", () => {
    for (const message of ['recovery is in progress', 'logical decoding cannot be used while in recovery']) {
      const refusal = pgRefusal('55000', message, undefined)!;
      // Before: PG_WAL_LEVEL, "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL".
      expect(refusal, message).toMatchObject({ code: 'PG_QUERY_FAILED', hint: STANDBY_FIX });
      expect(refusal.message, message).toBe(`PostgreSQL refused the operation (SQLSTATE 55000): ${message}`);
    }
  });

  it("says PostgreSQL 15's refusal of a new slot on a standby (0A000, what a real one answers) is a standby", () => {
    // Before: no entry for 0A000, so the generic "the message above is PostgreSQL's own".
    expect(pgRefusal('0A000', 'logical decoding cannot be used while in recovery', undefined)).toMatchObject({ code: 'PG_QUERY_FAILED', hint: STANDBY_FIX });
    expect(pgRefusal('0A000', 'cannot use a replication slot for something else', undefined)).toBeUndefined();
  });

  it("the server's refusals and the commands' own pg_is_in_recovery() check give one error with one fix", () => {
    const own = standbyError('slot create');
    expect(own).toMatchObject({ code: 'PG_QUERY_FAILED', hint: STANDBY_FIX, message: 'outbox-relay slot create refused: this PostgreSQL is a standby (in recovery: pg_is_in_recovery() is true); nothing was created or changed' });
    expect(pgRefusal('25006', 'cannot execute DROP PUBLICATION in a read-only transaction', undefined)).toMatchObject({ code: own.code, hint: own.hint });
  });

  it("keeps the server's DETAIL in the message, where the reason often is", () => {
    const cause = { code: '55000', message: 'cannot read from logical replication slot "s"', detail: 'This slot has been invalidated because it exceeded the maximum reserved size.' };
    // Before: the detail was given only for refusals without an entry, so not for 55000's invalidated slot.
    expect(pgRefusal('55000', cause.message, cause)!.message).toBe(`PostgreSQL refused the operation (SQLSTATE 55000): ${cause.message} (${cause.detail})`);
  });

  it('names what to do about an object that exists already or is not a table', () => {
    expect(pgRefusal('42710', 'publication "outbox_relay" already exists', undefined)).toMatchObject({ code: 'PG_QUERY_FAILED', hint: expect.stringMatching(/already exists: use it/) as unknown });
    expect(pgRefusal('42809', '"outbox_view" is not a table', undefined)).toMatchObject({ code: 'PG_QUERY_FAILED', hint: expect.stringMatching(/ordinary or partitioned table/) as unknown });
  });

  it('leaves unknown refusals to the caller', () => {
    expect(pgRefusal('XX000', 'internal error', undefined)).toBeUndefined();
    expect(pgRefusal(undefined, 'no code', undefined)).toBeUndefined();
  });
});
