import type { Command } from 'commander';
import { checkpointStatus, type CheckpointStatus } from '../../ops/checkpoint-status.js';
import { findPublication } from '../../ops/publications.js';
import type { RelayConfig } from '../../config/types.js';
import { localAddress, relayBaseUrl } from '../../ops/liveness-probe.js';
import { fetchRelayHealth, type RelayHealth } from '../../ops/relay-health.js';
import { findSlot } from '../../ops/slots.js';
import { RelayError } from '../../errors.js';
import { recreateSlot } from '../../source/recreate-slot.js';
import { republishScope } from '../../source/republish-command.js';
import { EXIT, errorJson } from '../exit.js';
import { opsCommand } from './ops-command.js';
import { bytes, keyValues, publicationText, slotRows, type Cell } from './output.js';

/** A /readyz object (`halt`, `reconnecting`) as one `<name>_<field>` line per field, its times as /readyz gives them. */
function objectRows(name: string, value: unknown): [string, Cell][] {
  return value !== null && typeof value === 'object' ? Object.entries(value).map(([k, v]): [string, Cell] => [`${name}_${k}`, v as Cell]) : [];
}

type Cause = { system?: unknown; code?: unknown; message?: unknown; fix?: unknown; since?: unknown };

/** The outages /readyz lists beside the one `reconnecting` names (a relay before 2026-12-07 lists none). */
function otherOutages(readiness: Record<string, unknown>): Cause[] {
  const shown = (readiness.reconnecting as Cause | undefined)?.system;
  return Array.isArray(readiness.outages) ? (readiness.outages as Cause[]).filter((cause) => cause?.system !== shown) : [];
}

export function relayRows(relay: RelayHealth): [string, Cell][] {
  if (!relay.reachable) return [['relay', `not reachable at ${relay.url} (${relay.reason})`]];
  const { halt, reconnecting, outages: _listed, ...readiness } = relay.readiness;
  const fields = Object.entries(readiness).map(([k, v]): [string, Cell] => [k, typeof v === 'object' && v !== null ? JSON.stringify(v) : (v as Cell)]);
  // The reason a relay is not ready, as a halt's: on one JSON line its `since` was lost among message and fix. A
  // second outage (Kafka's while PostgreSQL reconnects) follows as `also_retrying_*`: `reconnecting` names one only.
  const also = otherOutages(relay.readiness).flatMap((cause) => objectRows('also_retrying', cause));
  return [['relay', `${relay.ready ? 'ready' : 'not ready'} (HTTP ${relay.httpStatus} from ${relay.url})`], ...fields, ...objectRows('reconnecting', reconnecting), ...also, ...objectRows('halt', halt)];
}

/** See EXIT: what the relay is doing decides the exit code, so `status` works as a check in scripts. */
function relayExitCode(relay: RelayHealth): number {
  if (!relay.reachable) return EXIT.relayUnreachable;
  if (relay.ready) return EXIT.ok;
  return relay.readiness.state === 'halted' || relay.readiness.state === 'failed' ? EXIT.relayHalted : EXIT.relayNotReady;
}

/** What to do about a relay that is up but not ready, by its state (docs/operations.md, "Lag growing"). */
const NOT_READY_FIXES: Record<string, string> = {
  starting: 'it is connecting to Kafka and PostgreSQL: run status again in a few seconds; if it stays, its log names what it waits for (e.g. "cannot connect to Kafka yet")',
  standby: 'another instance holds the slot (held_by above) and this one takes over when it goes; act only if no instance is streaming',
  reconnecting: 'PostgreSQL is unreachable from the relay (reconnecting above names the error): its warn line "replication connection lost: reconnecting" names the cause; it retries until retry.maxDuration',
  draining: 'it is stopping (a signal): it exits once Kafka acknowledged what was sent, within shutdownGrace',
  stopped: 'it stopped: start it again',
  streaming: 'Kafka is unreachable from the relay (producerConnected false): check kafka.brokers and the brokers; it retries until retry.maxDuration',
};

const KAFKA_SIDE_RECONNECT_FIX =
  'a replication session cannot start because Kafka failed (reconnecting above names the error: e.g. the checkpoint topic unreadable, or a transaction left open on it): its warn line "Kafka unavailable while starting a replication session: retrying" names the cause; check kafka.brokers, the checkpoint topic and its ACLs; it retries until retry.maxDuration';

/**
 * Every exit but 0 comes with one error line, code and fix (invariant 5): the relay's state is why status did not
 * exit 0, so it becomes the error; the halt's own code and fix, when the relay halted.
 */
export function relayProblem(relay: RelayHealth): RelayError | undefined {
  if (!relay.reachable) {
    return new RelayError('RELAY_UNREACHABLE', `no relay answered at ${relay.url}: ${relay.reason}`, {
      hint: 'check that the relay runs (its logs, the orchestrator) and that --relay-url / OUTBOX_RELAY_RELAY_URL points at its http.host and http.port',
    });
  }
  if (relay.ready) return undefined;
  const state = String(relay.readiness.state);
  const halt = relay.readiness.halt as { code?: unknown; message?: unknown; fix?: unknown } | undefined;
  if (state === 'halted' || state === 'failed') {
    return new RelayError('RELAY_HALTED', `the relay ${state}${halt ? ` with ${String(halt.code)}: ${String(halt.message)}` : ''}`, {
      hint: typeof halt?.fix === 'string' ? halt.fix : "its error line says why; fix that and restart it (see docs/operations.md, 'Poison event')",
      details: { haltCode: halt?.code ?? null },
    });
  }
  // A session also needs Kafka before it streams (the checkpoint, exactly-once's claim): the cause names the side.
  // Its own fix (a Kafka outage's while streaming too) is the one its warn line gives: more precise than the state's.
  const cause = relay.readiness.reconnecting as Cause | undefined;
  const kafkaSide = state === 'reconnecting' && cause?.system === 'Kafka';
  const hint = typeof cause?.fix === 'string' ? cause.fix : kafkaSide ? KAFKA_SIDE_RECONNECT_FIX : (NOT_READY_FIXES[state] ?? 'see the relay log');
  // Kafka's outage while PostgreSQL reconnects: its fix is the streaming state's when it has none of its own.
  const also = otherOutages(relay.readiness);
  return new RelayError('RELAY_NOT_READY', `the relay is not ready: state ${state}, producerConnected ${String(relay.readiness.producerConnected)}${[cause, ...also].map(retrying).join('')}`, {
    hint: [hint, ...also.map((other) => `for ${String(other.system)}: ${typeof other.fix === 'string' ? other.fix : NOT_READY_FIXES.streaming}`)].join('; '),
  });
}

/** `, retrying <system> since <time>: <code> <message>`; since when: how long an outage lasted decides what to do about it. */
function retrying(cause: Cause | undefined): string {
  if (!cause) return '';
  // A relay before 2026-12-07 gives no `since`.
  const since = typeof cause.since === 'string' ? ` since ${cause.since}` : '';
  return `, retrying ${String(cause.system)}${since}: ${String(cause.code)} ${String(cause.message)}`;
}

function checkpointRows(status: CheckpointStatus): [string, Cell][] {
  const rows: [string, Cell][] = [['checkpoint_topic', status.topic]];
  if (status.topicPolicy) rows.push(['checkpoint_topic_policy', `${status.topicPolicy.message} (${status.topicPolicy.code}); fix: ${status.topicPolicy.fix}`]);
  if (status.error) return [...rows, ['checkpoint', `not readable: ${status.error.message} (${status.error.code})${status.error.fix ? `; fix: ${status.error.fix}` : ''}`]];
  if (!status.checkpoint) return [...rows, ['checkpoint', 'none written for this slot yet']];
  rows.push(['checkpoint_lsn', status.checkpoint.lsn], ['checkpoint_commit_time', status.checkpoint.commitTime], ['checkpoint_written_at', status.checkpoint.writtenAt]);
  const window = status.replayWindow;
  if (window) rows.push(['replay_window', `${bytes(window.retainedBytes)} of WAL kept: replayable from ${window.oldestReplayableLsn}, checkpoint at ${window.checkpointLsn}`]);
  return rows;
}

/**
 * The line of a missing slot or publication: the setup that creates it, naming the relay's slot, publication and
 * tables (recreateSlot), to run as printed from another shell than this one (whose settings may be flags).
 */
export function missingLine(object: 'slot' | 'publication', config: RelayConfig): string {
  const names = { slot: config.slot, ...republishScope(config) };
  return object === 'slot'
    ? `slot "${config.slot}": does not exist; create it: ${recreateSlot('setup', undefined, names)}`
    : `publication "${config.publication}": does not exist; create it: ${recreateSlot('setup', null, names)}`;
}

/**
 * relayUrl as set, else the relay's own address from http.port and http.host (as health probes it): with only
 * OUTBOX_RELAY_HTTP_PORT set, status looked at 9464 and said the relay was not reachable. A server turned off
 * (http.port 0) leaves relayUrl's default.
 */
export function relayUrlOf(config: RelayConfig): string {
  if (config.origins.relayUrl !== 'default' || config.http.port === 0) return config.values.relayUrl as string;
  return relayBaseUrl(localAddress(config.http.host), config.http.port);
}

export function statusCommand(): Command {
  return opsCommand(
    {
      settings: 'status',
      name: 'status',
      description:
        "One view of the slot, the publication, the lag, the running relay's readiness (GET <relay-url>/readyz: a halted relay's code, event, commit LSN and fix; a not-ready one's reason, what it retries: code, fix and since when), and with --kafka-brokers the last checkpoint, the WAL the replay window keeps, and whether the checkpoint topic's policy keeps checkpoints. Exit 0 ready, 3 not ready, 4 halted, 5 relay not reachable; 1 PostgreSQL not reachable (the relay's readiness and the checkpoint still shown; a halted relay's 4 goes first).",
      withoutPostgres: async ({ config, signal }, failure) => {
        // PostgreSQL down is when the relay's own view matters most: its readiness and the checkpoint are read
        // from elsewhere, and PostgreSQL's failure is the error (exit 1), as when it refused the command; except
        // for a halted relay (exit 4, RELAY_HALTED): it waits for an operator whatever else is wrong and stays
        // halted once PostgreSQL is back, while a relay not ready with PostgreSQL down most likely waits for it.
        const [relay, checkpoint] = await Promise.all([fetchRelayHealth(relayUrlOf(config)), checkpointStatus(config, undefined, signal)]);
        const halted = relayExitCode(relay) === EXIT.relayHalted;
        const postgres: [string, Cell][] = [
          ['postgres', `not reachable (${failure.code}): ${failure.message}`],
          ['postgres_fix', failure.hint],
        ];
        const sections = [keyValues(postgres), keyValues(relayRows(relay)), ...(checkpoint ? [keyValues(checkpointRows(checkpoint))] : [])];
        return {
          data: { currentWalLsn: null, inRecovery: null, slot: null, publication: null, postgresError: errorJson(failure), relay, ...(checkpoint ? { checkpoint } : {}) },
          text: sections.join('\n\n'),
          ...(halted ? { error: relayProblem(relay), exitCode: EXIT.relayHalted } : { error: failure }),
        };
      },
      examples: ['outbox-relay status', 'outbox-relay status --relay-url http://relay-0.relay:9464 --json', 'outbox-relay status --kafka-brokers kafka:9092 --checkpoint-topic outbox-relay.checkpoints'],
    },
    async ({ client, config, signal }) => {
      const [slot, publication, relay] = await Promise.all([findSlot(client, config.slot), findPublication(client, config.publication), fetchRelayHealth(relayUrlOf(config))]);
      const checkpoint = await checkpointStatus(config, slot, signal);
      // A standby refuses pg_current_wal_lsn(): status failed there (PG_QUERY_FAILED, exit 1) without the relay's state
      // or the slot's synced copy. Its WAL position is its replay position, as slot status measures the lag from.
      const { rows } = await client.query<{ lsn: string; in_recovery: boolean }>(
        'SELECT pg_is_in_recovery() AS in_recovery, (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS lsn',
      );
      const { lsn: currentWalLsn, in_recovery: inRecovery } = rows[0]!;
      const sections = [
        keyValues(
          inRecovery
            ? [
                ['server', 'a standby (in recovery): the relay streams only from a primary; the lag below is from replay_lsn'],
                ['replay_lsn', currentWalLsn],
              ]
            : [['current_wal_lsn', currentWalLsn]],
        ),
        slot ? keyValues(slotRows(slot)) : missingLine('slot', config),
        publication ? publicationText(publication) : missingLine('publication', config),
        keyValues(relayRows(relay)),
        ...(checkpoint ? [keyValues(checkpointRows(checkpoint))] : []),
      ];
      return {
        data: { currentWalLsn, inRecovery, slot: slot ?? null, publication: publication ?? null, relay, ...(checkpoint ? { checkpoint } : {}) },
        text: sections.join('\n\n'),
        error: relayProblem(relay),
        exitCode: relayExitCode(relay),
      };
    },
  );
}
