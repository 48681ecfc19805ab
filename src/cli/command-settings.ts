import type { SettingGroup } from '../config/settings.js';

/**
 * The setting groups each command reads, declared once: its --help lists exactly these settings' flags, and
 * docs/cli.md's "Settings per command" table is generated from this list. The environment, a config file and the
 * other (hidden) flags may still hold every setting, so one set serves all commands; a command ignores the rest.
 */
export const COMMAND_SETTINGS = {
  run: ['postgres', 'slot', 'publication', 'tables', 'mapping', 'messages', 'start', 'heartbeat', 'kafka', 'delivery', 'retry', 'poison', 'checkpoint', 'shutdown', 'http', 'logging'],
  // No heartbeat (the daemon's job) and no poison policy: a replay halts on a record Kafka refuses.
  replay: ['postgres', 'slot', 'publication', 'tables', 'mapping', 'messages', 'start', 'kafka', 'delivery', 'retry', 'checkpoint', 'shutdown', 'logging'],
  // Rows from the tables through the plain producer: no slot, no stream. The publication for its row filter (rows it
  // leaves out were never the relay's to send). The checkpoint topic only to refuse a row that names it as its topic
  // (a record there under the slot's key would be read as where to resume).
  republish: ['postgres', 'publication', 'tables', 'mapping', 'kafka', 'retry', 'checkpoint', 'shutdown', 'logging'],
  // The mapping: its checks include that every column the mapping reads is published.
  setup: ['postgres', 'slot', 'publication', 'tables', 'mapping'],
  // The tables: named, with the publication, in the republish of an existing lost slot's fix (republishCommand).
  'slot create': ['postgres', 'slot', 'publication', 'tables'],
  // The publication and tables: named in the republish its consequence prints (republishCommand).
  'slot drop': ['postgres', 'slot', 'publication', 'tables'],
  'slot list': ['postgres'],
  'slot status': ['postgres', 'slot'],
  // The tables: the preview counts the rows of the outbox tables, not of every table the publication holds.
  'slot advance': ['postgres', 'slot', 'publication', 'tables', 'messages'],
  'publication create': ['postgres', 'publication', 'tables'],
  // The tables: named, with the publication, in the republish its consequence prints (republishCommand).
  'publication drop': ['postgres', 'publication', 'slot', 'tables'],
  'publication show': ['postgres', 'publication'],
  // Kafka only for the checkpoint (with --kafka-brokers). http: relayUrl's default is the relay's own address, as health reads it.
  status: ['postgres', 'slot', 'publication', 'client', 'kafka', 'checkpoint', 'http'],
  'config check': ['postgres', 'slot', 'publication', 'tables', 'mapping', 'messages', 'start', 'heartbeat', 'kafka', 'delivery', 'retry', 'poison', 'checkpoint', 'shutdown', 'http', 'client', 'logging'],
  // The address of /healthz only: a probe must not fail on the other settings (a secret file gone since the start).
  health: ['http'],
} as const satisfies Record<string, readonly SettingGroup[]>;

export type CommandName = keyof typeof COMMAND_SETTINGS;
