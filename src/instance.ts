import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/** The package version, read once from package.json (one level above both src/ and dist/). */
export const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** This instance: the host name (the pod name on Kubernetes) and the slot it serves, e.g. `orders-7d9f-x2k4/outbox_relay`. */
export function instanceName(slot: string): string {
  return `${hostname()}/${slot}`;
}

/**
 * The application_name of the relay's connections, so `slot status` and pg_stat_activity say which instance holds
 * the slot: `outbox-relay <pid>@<host>/<slot>`. The process id (in the start line, `pid`) tells two instances on one
 * host apart, whose held_by was the same; it goes first, as PostgreSQL keeps 63 bytes and a long pod name cut it off.
 */
export function applicationName(slot: string): string {
  return `outbox-relay ${process.pid}@${instanceName(slot)}`.slice(0, 63);
}
