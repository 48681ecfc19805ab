import type { Command } from 'commander';
import { findPublication } from '../../ops/publications.js';
import { fetchRelayHealth, type RelayHealth } from '../../ops/relay-health.js';
import { findSlot } from '../../ops/slots.js';
import { opsCommand } from './ops-command.js';
import { keyValues, publicationText, slotRows, type Cell } from './output.js';

function relayRows(relay: RelayHealth): [string, Cell][] {
  if (!relay.reachable) return [['relay', `not reachable at ${relay.url} (${relay.reason})`]];
  const fields = Object.entries(relay.readiness).map(([k, v]): [string, Cell] => [k, typeof v === 'object' && v !== null ? JSON.stringify(v) : (v as Cell)]);
  return [['relay', `${relay.ready ? 'ready' : 'not ready'} (HTTP ${relay.httpStatus} from ${relay.url})`], ...fields];
}

export function statusCommand(): Command {
  return opsCommand(
    {
      name: 'status',
      description: "One view of the slot, the publication, the lag and, if it answers, the running relay's readiness (GET <relay-url>/readyz).",
      examples: ['outbox-relay status', 'outbox-relay status --relay-url http://relay-0.relay:9464 --json'],
      json: true,
    },
    async ({ client, config }) => {
      const relayUrl = config.values.relayUrl as string;
      const [slot, publication, relay] = await Promise.all([findSlot(client, config.slot), findPublication(client, config.publication), fetchRelayHealth(relayUrl)]);
      const { rows } = await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
      const currentWalLsn = rows[0]!.lsn;
      const sections = [
        keyValues([['current_wal_lsn', currentWalLsn]]),
        slot ? keyValues(slotRows(slot)) : `slot "${config.slot}": does not exist (outbox-relay setup creates it)`,
        publication ? publicationText(publication) : `publication "${config.publication}": does not exist (outbox-relay setup creates it)`,
        keyValues(relayRows(relay)),
      ];
      return { data: { currentWalLsn, slot: slot ?? null, publication: publication ?? null, relay }, text: sections.join('\n\n') };
    },
  );
}
