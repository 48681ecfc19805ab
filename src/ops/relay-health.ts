import { errorMessage } from '../errors.js';

/** What the running relay's /readyz says, or why it could not be asked. Not reachable is a state, not an error. */
export type RelayHealth =
  | { reachable: true; url: string; httpStatus: number; ready: boolean; readiness: Record<string, unknown> }
  | { reachable: false; url: string; reason: string };

const TIMEOUT_MS = 2000;

export async function fetchRelayHealth(baseUrl: string): Promise<RelayHealth> {
  const url = new URL('readyz', baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`).toString();
  let response: Response;
  let text: string;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    // Inside the try: a body cut off by the timeout or a reset is an unreachable relay too.
    text = await response.text();
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    return { reachable: false, url, reason: cause ? errorMessage(cause) : errorMessage(err) };
  }
  let readiness: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(text);
    readiness = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : { body: parsed };
  } catch {
    readiness = { body: text.slice(0, 200) };
  }
  // The relay's /readyz always names its state. Another server there (a wrong port or path) was reported as a relay
  // not ready, in state undefined, with 'see the relay log' for a fix: it is no relay reached.
  if (typeof readiness.state !== 'string') {
    return { reachable: false, url, reason: `that is not the relay's /readyz (HTTP ${response.status}, ${JSON.stringify(text.slice(0, 80))}): another server answers there` };
  }
  // 503 is the relay's own "not ready" (standby, reconnecting, halted); its body says which. Only the relay's own
  // `ready: true` is ready.
  return { reachable: true, url, httpStatus: response.status, ready: response.status === 200 && readiness.ready === true, readiness };
}
