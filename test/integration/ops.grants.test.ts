import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { checkpointStore } from '../support/checkpoints.js';
import { useDatabase } from '../support/database.js';
import { insertEvents, setupOutbox } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { readTopic, uniqueName } from '../support/services.js';

describe('ops: the grants the relay really needs (docs/security.md)', () => {
  const db = useDatabase('grants');

  it('REPLICATION and CONNECT suffice to relay; SELECT on the outbox is needed only by republish', async () => {
    const setup = await setupOutbox(db());
    const role = uniqueName('relay_noselect');
    await db().query(`CREATE ROLE ${role} LOGIN REPLICATION`);
    const url = new URL(db().url);
    url.username = role;
    const asRole = (args: string[]) => args.map((a) => (a === db().url ? url.toString() : a));
    expect((await db().query(`SELECT has_table_privilege($1, 'public.outbox', 'SELECT') AS can`, [role])).rows[0]).toEqual({ can: false });

    const relay = startRelay(asRole(setup.args));
    await relay.waitForMessage('streaming from PostgreSQL');
    const events = await insertEvents(db(), 3);
    expect((await readTopic(setup.topic, { expected: 3 })).map((r) => r.key)).toEqual(events.map((e) => e.id));
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);

    const republish = await runCli(['republish', '--postgres-url', url.toString(), '--ids', events[0]!.id, '--dry-run']);
    expect(republish.code).toBe(1);
    // Its one error is its log line (JSON on stdout in a pipe), with the code and the fix.
    const errors = republish.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.level === 'error');
    expect(errors, republish.stdout + republish.stderr).toHaveLength(1);
    expect(String(errors[0]!.err)).toContain(`role "${role}" lacks a privilege`);
    expect(String(errors[0]!.err)).toContain('permission denied for table outbox');
    // PostgreSQL names the table without its schema; the fix's GRANT names the relay's table, to run as printed.
    expect(String(errors[0]!.fix)).toContain(`GRANT SELECT ON "public"."outbox" TO "${role}";`);
    expect(republish.stderr).toBe('');
  });

  it("an outbox table in a schema the relay's role has no USAGE on still streams: the start-up checks read only catalogs", async () => {
    const schema = uniqueName('sales');
    const role = uniqueName('relay_nousage');
    await db().query(`CREATE SCHEMA ${schema}`);
    await db().query(`CREATE TABLE ${schema}.outbox (LIKE public.outbox INCLUDING ALL)`);
    await db().query(`CREATE ROLE ${role} LOGIN REPLICATION`);
    expect((await db().query(`SELECT has_schema_privilege($1, $2, 'USAGE') AS can`, [role, schema])).rows[0]).toEqual({ can: false });
    const setup = await setupOutbox(db(), { table: `${schema}.outbox` });
    const url = new URL(db().url);
    url.username = role;

    const relay = startRelay([...setup.args.map((a) => (a === db().url ? url.toString() : a)), '--table', `${schema}.outbox`]);
    // Before: the table's oid was read with a ::regclass cast, which needs USAGE on the schema: 'permission denied
    // for schema', taken for a lost connection and retried until RETRIES_EXHAUSTED.
    await relay.waitForMessage('streaming from PostgreSQL', 30_000);
    const ids = [randomUUID(), randomUUID()];
    await db().query(
      `INSERT INTO ${schema}.outbox (id, aggregate_type, aggregate_id, event_type, payload) SELECT u, 'order', 'o-1', 'OrderPlaced', '{}' FROM unnest($1::uuid[]) u`,
      [ids],
    );
    expect((await readTopic(setup.topic, { expected: 2 })).map((r) => r.key)).toEqual(ids);
    relay.signal('SIGTERM');
    expect(await relay.exited, relay.dump()).toBe(0);
  });

  it('without EXECUTE on pg_control_system (revoked, or a managed service without it) the relay still relays; its checkpoint records no system identifier', async () => {
    const role = uniqueName('relay_nocontrol');
    const checkpoints = uniqueName('checkpoints');
    const setup = await setupOutbox(db(), { extraArgs: ['--checkpoint-topic', checkpoints] });
    await db().query(`CREATE ROLE ${role} LOGIN REPLICATION`);
    // pg_catalog is per database: this database only.
    await db().query('REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC');
    try {
      const url = new URL(db().url);
      url.username = role;
      const relay = startRelay(setup.args.map((a) => (a === db().url ? url.toString() : a)));
      await relay.waitForMessage('streaming from PostgreSQL');
      const events = await insertEvents(db(), 2);
      expect((await readTopic(setup.topic, { expected: 2 })).map((r) => r.key)).toEqual(events.map((e) => e.id));
      relay.signal('SIGTERM');
      expect(await relay.exited).toBe(0);
      const written = await checkpointStore(checkpoints).read(setup.slot);
      expect(written).toBeDefined();
      expect(written!.systemId).toBeUndefined();
    } finally {
      await db().query('GRANT EXECUTE ON FUNCTION pg_control_system() TO PUBLIC');
    }
  });
});

describe("ops: slot drop --force as another role than the relay's (docs/security.md)", () => {
  const db = useDatabase('grantsdrop');

  it('refused without pg_signal_backend, with the fix naming it (and for a superuser relay, even with it); with it, or as the relay\'s own role (the fix\'s other way), the walsender is terminated, the slot dropped, and the relay exits PG_SLOT_MISSING', async () => {
    const setup = await setupOutbox(db());
    const [relayRole, plain, signaller] = [uniqueName('relay'), uniqueName('ops_plain'), uniqueName('ops_signal')];
    for (const role of [relayRole, plain]) await db().query(`CREATE ROLE ${role} LOGIN REPLICATION`);
    await db().query(`CREATE ROLE ${signaller} LOGIN REPLICATION IN ROLE pg_signal_backend`);
    const as = (role: string) => {
      const url = new URL(db().url);
      url.username = role;
      return url.toString();
    };
    const drop = (role: string) => runCli(['slot', 'drop', '--force', '--postgres-url', as(role), '--slot', setup.slot]);
    const slot = async () => (await db().query<{ pid: number | null }>('SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1', [setup.slot])).rows[0];
    const relayAsItsRole = () => startRelay(setup.args.map((a) => (a === db().url ? as(relayRole) : a)));
    /** slot drop --force as `role` terminates `relay`'s walsender `pid` and drops the slot; the relay exits PG_SLOT_MISSING. */
    const dropsUnder = async (relay: ReturnType<typeof startRelay>, pid: number | null, role: string) => {
      const dropped = await drop(role);
      expect(dropped.code, dropped.stderr).toBe(0);
      expect(dropped.stdout).toContain(`slot "${setup.slot}": dropped (terminated backend pid ${pid})`);
      expect(await slot()).toBeUndefined();
      expect(await relay.exitCode(), relay.dump()).toBe(1);
      expect(relay.logs.filter((l) => l.level === 'error' || l.level === 'fatal')).toEqual([expect.objectContaining({ msg: 'giving up', code: 'PG_SLOT_MISSING' })]);
    };

    // The test stack's role is a superuser: pg_signal_backend does not reach its backends.
    const asSuperuser = startRelay(setup.args);
    await asSuperuser.waitForMessage('streaming from PostgreSQL');
    const superuserPid = (await slot())!.pid;
    const notSuperuser = await drop(signaller);
    expect(notSuperuser.code, notSuperuser.stderr).toBe(1);
    expect(notSuperuser.stderr).toContain(`PG_PERMISSION_DENIED: role "${signaller}" may not terminate backend pid ${superuserPid} (role "postgres"), which holds replication slot "${setup.slot}"`);
    expect(notSuperuser.stderr).toContain("fix: that backend's role is a superuser, which only a superuser may terminate");
    expect(await slot()).toEqual({ pid: superuserPid });
    asSuperuser.signal('SIGTERM');
    expect(await asSuperuser.exited).toBe(0);

    const relay = relayAsItsRole();
    await relay.waitForMessage('streaming from PostgreSQL');
    const walsender = (await slot())!.pid;
    const refused = await drop(plain);
    expect(refused.code, refused.stderr).toBe(1);
    expect(refused.stderr).toContain(`PG_PERMISSION_DENIED: role "${plain}" may not terminate backend pid ${walsender} (role "${relayRole}"), which holds replication slot "${setup.slot}"`);
    expect(refused.stderr).toContain(`fix: as a superuser: GRANT pg_signal_backend TO "${plain}"; or run slot drop --force as the relay's role ${relayRole}`);
    // Nothing changed: the same walsender streams on.
    expect(await slot()).toEqual({ pid: walsender });

    await dropsUnder(relay, walsender, signaller);

    // The fix's other way: the relay's own role, without pg_signal_backend, terminates its own walsender.
    const created = await runCli(['slot', 'create', '--postgres-url', db().url, '--slot', setup.slot, '--publication', setup.publication]);
    expect(created.code, created.stderr).toBe(0);
    const again = relayAsItsRole();
    await again.waitForMessage('streaming from PostgreSQL');
    await dropsUnder(again, (await slot())!.pid, relayRole);
  });
});
