import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTestCa } from '@keyway/testing';
import { kwProfileKey, readKwLogin } from './kw-profile.js';

/** The files `kw login` writes (apps/kw/src/profile.ts), for one proxy. */
function writeLogin(home: string, proxy: string, files: Partial<Record<'profile.json' | 'key.pem' | 'cert.pem' | 'cas.pem', string>>) {
  const dir = join(home, 'profiles', kwProfileKey(proxy));
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  writeFileSync(join(home, 'current-profile'), `${proxy}\n`);
  return dir;
}

describe('readKwLogin', () => {
  const ca = createTestCa();
  const leaf = ca.issueClient('jimbo');

  it('reads the current profile: proxy, user, key, certificate, CAs and expiry', () => {
    const home = mkdtempSync(join(tmpdir(), 'kw-home-'));
    const dir = writeLogin(home, 'proxy.example.com:3080', {
      'profile.json': JSON.stringify({ proxy: 'proxy.example.com:3080', user: 'jimbo', cluster: 'acme', insecure: false }),
      'key.pem': leaf.keyPem,
      'cert.pem': leaf.certPem,
      'cas.pem': ca.certPem + ca.certPem,
    });
    const login = readKwLogin({ KW_HOME: home });
    expect(login).toMatchObject({ proxy: 'proxy.example.com:3080', user: 'jimbo', dir });
    expect(dir).toMatch(/profiles\/proxy\.example\.com_3080$/);
    expect(login?.identity).toEqual({ privateKeyPem: leaf.keyPem, certPem: leaf.certPem, caPems: [ca.certPem, ca.certPem] });
    expect(login?.expires.getTime()).toBeGreaterThan(Date.now());
  });

  it('is undefined without a login, or after kw logout removed the profile', () => {
    const home = mkdtempSync(join(tmpdir(), 'kw-home-'));
    expect(readKwLogin({ KW_HOME: home })).toBeUndefined();
    writeFileSync(join(home, 'current-profile'), 'gone:3080\n');
    expect(readKwLogin({ KW_HOME: home })).toBeUndefined();
  });

  it('names the file of a broken profile', () => {
    const home = mkdtempSync(join(tmpdir(), 'kw-home-'));
    writeLogin(home, 'p:3080', { 'profile.json': '{}', 'cert.pem': leaf.certPem, 'cas.pem': ca.certPem });
    expect(() => readKwLogin({ KW_HOME: home })).toThrow(/kw profile in .*p_3080 is incomplete \(key\.pem: .*\); run `kw login --proxy=p:3080` again/);
    writeLogin(home, 'p:3080', { 'key.pem': leaf.keyPem, 'cert.pem': 'not a cert' });
    expect(() => readKwLogin({ KW_HOME: home })).toThrow(/cert\.pem is not a certificate/);
    writeLogin(home, 'p:3080', { 'profile.json': '{' });
    expect(() => readKwLogin({ KW_HOME: home })).toThrow(/profile\.json is not valid JSON/);
  });
});
