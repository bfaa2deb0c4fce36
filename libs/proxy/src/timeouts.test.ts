import { describe, expect, it } from 'vitest';
import { loadConfig } from '@keyway/config';
import { DEFAULT_LISTENER_TIMEOUTS, listenerTimeoutsFromConfig } from './timeouts.js';

describe('listenerTimeoutsFromConfig', () => {
  it('takes proxy_service.timeouts from the file or the environment, leaving the rest at their defaults', () => {
    const cfg = loadConfig({ env: { KEYWAY_PROXY_SERVICE__TIMEOUTS__LOCK_STALENESS: '7s', KEYWAY_PROXY_SERVICE__TIMEOUTS__HANDSHAKE: '2s' } });
    const t = { ...DEFAULT_LISTENER_TIMEOUTS, ...listenerTimeoutsFromConfig(cfg.proxy_service.timeouts) };
    expect(t.lockStalenessMs).toBe(7_000);
    expect(t.handshakeMs).toBe(2_000);
    expect(t.relayIdleMs).toBe(DEFAULT_LISTENER_TIMEOUTS.relayIdleMs);
  });

  it('refuses a duration it cannot read, naming the field', () => {
    expect(() => loadConfig({ env: { KEYWAY_PROXY_SERVICE__TIMEOUTS__LOCK_STALENESS: 'soon' } })).toThrow(/lock_staleness/);
  });
});
