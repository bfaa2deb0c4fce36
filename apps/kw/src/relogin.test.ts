import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { canAsk } from './relogin.js';

describe('canAsk: whether kw kube credentials may prompt', () => {
  const info = (interactive: unknown) => JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1beta1', kind: 'ExecCredential', spec: { interactive } });

  it('follows kubectl: interactive only when kubectl says so and stdin is a terminal', () => {
    expect(canAsk({ KUBERNETES_EXEC_INFO: info(true) }, { isTTY: true })).toBe(true);
    expect(canAsk({ KUBERNETES_EXEC_INFO: info(false) }, { isTTY: true })).toBe(false);
    // interactiveMode: Never, or kubectl piped: it says false even if some stdin is a tty.
    expect(canAsk({ KUBERNETES_EXEC_INFO: info(true) }, { isTTY: false })).toBe(false);
  });

  it('run by hand (no exec info), asks only on a terminal', () => {
    expect(canAsk({}, { isTTY: true })).toBe(true);
    expect(canAsk({}, {})).toBe(false);
  });

  it('never asks without a terminal, whatever KUBERNETES_EXEC_INFO holds', () => {
    fc.assert(
      fc.property(fc.option(fc.oneof(fc.string(), fc.json()), { nil: undefined }), (raw) => {
        const env = raw === undefined ? {} : { KUBERNETES_EXEC_INFO: raw };
        expect(canAsk(env, { isTTY: false })).toBe(false);
      }),
    );
  });
});
