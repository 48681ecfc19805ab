import { createHash } from 'node:crypto';
import { QUOTED_MAX, quotedValue } from './topic-template.js';

/** The details of an error that hold an event's id (delivery's eventError, its failed produce request's first and last). */
const ID_DETAILS = ['eventId', 'firstEventId', 'lastEventId'] as const;

/**
 * An event as a message names it: `event "<id>"`, its id quoted as row values are (quotedValue, cut at QUOTED_MAX),
 * or `event without id`: the same words in every error and halt line, which an on-call engineer greps for. An
 * OutboxEvent's eventId is "" where its row or message had none (a refused one, in its place for the poison policy).
 */
export function namedEvent(eventId: unknown): string {
  return `event ${typeof eventId === 'string' && eventId !== '' ? quotedValue(eventId) : 'without id'}`;
}

/** An id under `N` (whole, or its start), with `<N>Length` and `<N>Sha256` when it was cut. */
export type IdFields<N extends string> = Record<N, string> & Partial<Record<`${N}Length`, number> & Record<`${N}Sha256`, string>>;

/**
 * An event's id as a log field, /readyz's halt and `status` carry it, under `name`: whole up to QUOTED_MAX
 * characters, as an error's message quotes it (quotedValue); longer, its start (marked cut with "…"), its length
 * (`<name>Length`) and the SHA-256 of its UTF-8 (`<name>Sha256`), which finds the row:
 * `WHERE encode(sha256(convert_to(id::text, 'UTF8')), 'hex') = '<sha256>'`. An id is row data, of megabytes in a
 * text column: carried whole, it made the halt line, the dead-letter and retry lines and /readyz's body as large,
 * and log shippers cap a line (16 to 256 KiB), dropping or splitting a longer one, the halt's one error line with
 * it. The commit LSN beside it names the transaction, not the row; the hash names the row.
 */
export function idFields<N extends string = 'eventId'>(id: string, name: N = 'eventId' as N): IdFields<N> {
  if (id.length <= QUOTED_MAX) return { [name]: id } as IdFields<N>;
  return { [name]: `${id.slice(0, QUOTED_MAX)}…`, [`${name}Length`]: id.length, [`${name}Sha256`]: createHash('sha256').update(id).digest('hex') } as IdFields<N>;
}

/** An error's details as a log line or a --json error carries them: each id in them by idFields. */
export function loggedDetails(details: Record<string, unknown>): Record<string, unknown> {
  const out = { ...details };
  for (const name of ID_DETAILS) {
    const id = details[name];
    if (typeof id === 'string') Object.assign(out, idFields(id, name));
  }
  return out;
}
