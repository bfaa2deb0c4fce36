import { describe, expect, it } from 'vitest';
import { loadConfig } from './load.js';

describe('auth_service.rate_limits', () => {
  it('defaults to 20 per address then one a second, and 10 per user then one every 5 s', () => {
    const c = loadConfig({ env: {} });
    expect(c.auth_service.rate_limits).toEqual({ per_address: { burst: 20, period: 1_000 }, per_user: { burst: 10, period: 5_000 } });
  });

  it('takes values from the environment and refuses nonsense', () => {
    const c = loadConfig({ env: { KEYWAY_AUTH_SERVICE__RATE_LIMITS__PER_USER__BURST: '3', KEYWAY_AUTH_SERVICE__RATE_LIMITS__PER_ADDRESS__PERIOD: '250ms' } });
    expect(c.auth_service.rate_limits).toEqual({ per_address: { burst: 20, period: 250 }, per_user: { burst: 3, period: 5_000 } });
    expect(() => loadConfig({ env: { KEYWAY_AUTH_SERVICE__RATE_LIMITS__PER_USER__BURST: '0' } })).toThrow(/rate_limits\.per_user\.burst/);
    expect(() => loadConfig({ env: { KEYWAY_AUTH_SERVICE__RATE_LIMITS__PER_USER__PERIOD: 'soon' } })).toThrow(/rate_limits\.per_user\.period/);
  });
});
