import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { applicationName } from '../../src/instance.js';

describe("the relay's application_name (slot status's held_by)", () => {
  it('names the process id first, so that two instances on one host differ, and a long host name cannot cut it off', () => {
    // Before: `outbox-relay <host>/<slot>`, the same for every instance of the host.
    expect(applicationName('outbox_relay')).toBe(`outbox-relay ${process.pid}@${hostname()}/outbox_relay`.slice(0, 63));
    const long = applicationName('s'.repeat(63));
    expect(long).toHaveLength(63);
    expect(long.startsWith(`outbox-relay ${process.pid}@`)).toBe(true);
  });
});
