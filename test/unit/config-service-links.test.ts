import { describe, expect, it } from 'vitest';
import { runCliSync } from '../support/cli.js';
import { load, refusal } from '../support/config-load.js';

/** What Kubernetes injects into a pod for a Service named outbox-relay-http (service links), when not turned off. */
const SERVICE_LINK_ENV = { OUTBOX_RELAY_HTTP_PORT: 'tcp://10.0.0.1:9090' };

describe('a Kubernetes service link in the place of a setting', () => {
  it('OUTBOX_RELAY_HTTP_PORT=tcp://… is refused with a fix naming its cause, the Service, and enableServiceLinks: false', () => {
    const r = refusal(() => load({}, SERVICE_LINK_ENV));
    expect(r.code).toBe('CONFIG_INVALID');
    expect(r.message).toBe('invalid environment variable OUTBOX_RELAY_HTTP_PORT: "tcp://10.0.0.1:9090"; expected a whole number from 0 to 65535');
    expect(r.hint).toBe(
      "Kubernetes sets OUTBOX_RELAY_HTTP_PORT to this address for a Service named outbox-relay-http (service links): set enableServiceLinks: false in the pod spec, or set OUTBOX_RELAY_HTTP_PORT in the container's env (setting http.port), which wins over the Service's",
    );
  });

  it('config check exits 2 with that fix', () => {
    const result = runCliSync(['config', 'check', '--kafka-brokers', 'k:9092'], SERVICE_LINK_ENV);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('fix: Kubernetes sets OUTBOX_RELAY_HTTP_PORT to this address for a Service named outbox-relay-http (service links): set enableServiceLinks: false');
  });

  it('another invalid port, or the same text as a flag, keeps the usual fix', () => {
    expect(refusal(() => load({}, { OUTBOX_RELAY_HTTP_PORT: 'ninety' })).hint).toBe('correct the environment variable OUTBOX_RELAY_HTTP_PORT (setting http.port)');
    expect(refusal(() => load({ 'http.port': 'tcp://10.0.0.1:9090' })).hint).toBe('correct the flag --http-port (setting http.port)');
  });
});
