import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, runCommand, startProcess, type LongRunning } from '@keyway/testing';
import { waitUntil } from './harness.js';

// Issue 12: a Teleport user moves over without rewriting. `keyway start -c teleport.yaml` takes
// the seed's teleport.yaml as written (Teleport's spellings, `enabled: yes`, a service Keyway
// does not have), the proxy serves the cluster of its own kubeconfig, and a person reaches it
// with kw and plain kubectl against a real kube-apiserver.
const adminKubeconfig = process.env['KEYWAY_E2E_KUBECONFIG'];

const root = fileURLToPath(new URL('../../..', import.meta.url));
const bin = (name: string) => join(root, 'node_modules/.bin', name);
const kwBin = join(root, 'apps/kw/bin/kw.mjs');
const PASSWORD = 'a long enough passphrase 12';

const RESOURCES = `kind: role
version: v7
metadata: {name: cluster-admins}
spec:
  allow:
    kubernetes_labels: {'*': '*'}
    kubernetes_groups: ['system:masters']
    kubernetes_resources: [{kind: pod, namespace: default, name: '*', verbs: [get, list]}]
`;

describe.skipIf(!adminKubeconfig)('keyway start -c teleport.yaml', () => {
  let dir: string;
  let keyway: LongRunning | undefined;
  let addr: string;

  const env = (): NodeJS.ProcessEnv => ({ PATH: process.env['PATH'], HOME: dir, KW_HOME: join(dir, 'kw'), KUBECONFIG: join(dir, 'kubeconfig') });
  const kwctl = (args: string[], input?: string) => runCommand(bin('kwctl'), ['--data-dir', join(dir, 'data'), ...args], { env: env(), ...(input ? { input } : {}), timeoutMs: 60_000 });
  const kw = (args: string[], input = '') => runCommand(process.execPath, [kwBin, ...args], { env: env(), input, timeoutMs: 60_000 });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kw-teleport-'));
    addr = `127.0.0.1:${await freePort()}`;
    const authAddr = `127.0.0.1:${await freePort()}`;
    // The seed's file, as a Teleport user has it (second_factor off keeps this test to passwords).
    writeFileSync(
      join(dir, 'teleport.yaml'),
      `version: v3
teleport:
  nodename: tp-node-1
  data_dir: ${join(dir, 'data')}
  log:
    output: stderr
    severity: DEBUG
auth_service:
  enabled: yes
  cluster_name: tp-acme
  listen_addr: ${authAddr}
  authentication:
    type: local
    second_factor: off
proxy_service:
  enabled: yes
  web_listen_addr: ${addr}
  public_addr: ${addr}
  kubernetes:
    enabled: yes
    public_addr: ['${addr}']
    kubeconfig_file: ${adminKubeconfig}
ssh_service:
  enabled: yes
`,
    );
    keyway = startProcess(bin('keyway'), ['start', '-c', join(dir, 'teleport.yaml')], env());
    await keyway.waitFor(/auth service \(gRPC, mTLS\):\s+(\S+)/, 90_000);
  }, 120_000);

  afterAll(async () => {
    await keyway?.stop();
  });

  it('starts from the file, warning about the service Keyway does not have', () => {
    const out = keyway?.stdout() ?? '';
    expect(out).toContain('cluster "tp-acme" is running');
    expect(out).toContain(`listening on ${addr}`);
    const stderr = keyway?.stderr() ?? '';
    expect(stderr).toMatch(/"level":40[^\n]*ssh_service is ignored: Keyway has no SSH service yet/);
  });

  it('lists the cluster the proxy serves itself, in kwctl and in kw kube ls', async () => {
    expect((await kwctl(['create', '-f', '-'], RESOURCES)).code).toBe(0);
    // Served by the proxy, named by teleport.nodename.
    await waitUntil(async () => /\btest\b[^\n]*tp-node-1/.test((await kwctl(['get', 'kube_clusters', '--format=text'])).stdout), 'kwctl to list the local cluster', 30_000);
    const added = await kwctl(['users', 'add', 'ada', '--roles=cluster-admins']);
    const token = /^ {2}([0-9a-f]{48})$/m.exec(added.stdout)?.[1] as string;
    expect(token, added.stderr).toBeTruthy();
    const signup = await kw(['signup', `--proxy=${addr}`, `--token=${token}`, '--insecure'], `${PASSWORD}\n${PASSWORD}\n`);
    expect(signup.code, signup.stderr).toBe(0);
    const login = await kw(['login', `--proxy=${addr}`, '--auth=local', '--user=ada', '--insecure'], `${PASSWORD}\n`);
    expect(login.code, login.stderr).toBe(0);
    const ls = await kw(['kube', 'ls', '--format', 'json']);
    expect(ls.code, ls.stderr).toBe(0);
    expect((JSON.parse(ls.stdout) as { kube_cluster_name: string }[]).map((c) => c.kube_cluster_name)).toEqual(['test']);
  }, 120_000);

  it('kw kube login writes a context plain kubectl reaches the cluster with', async () => {
    const r = await kw(['kube', 'login', 'test', '--insecure']);
    expect(r.code, r.stderr).toBe(0);
    const pods = await runCommand('kubectl', ['get', 'pods', '-n', 'default', '-o', 'name'], { env: env(), timeoutMs: 60_000 });
    expect(pods.code, pods.stderr).toBe(0);
    // Keyway's own rule still applies: the role allows pods in default only.
    const ns = await runCommand('kubectl', ['get', 'namespaces'], { env: env(), timeoutMs: 60_000 });
    expect(ns.code).not.toBe(0);
    expect(ns.stderr).toMatch(/keyway: user "ada" with roles \[cluster-admins\]/);
  }, 120_000);

  it('logs at teleport.log.severity (DEBUG): a refused login is there', async () => {
    const wrong = await kw(['login', `--proxy=${addr}`, '--auth=local', '--user=ada', '--insecure'], 'not the passphrase at all\n');
    expect(wrong.code).toBe(1);
    await waitUntil(() => /"level":20[^\n]*"msg":"call failed"/.test(keyway?.stderr() ?? ''), 'a debug line for the refused login');
  }, 60_000);
});

describe('keyway start -c teleport.yaml refusing what it cannot run', () => {
  const run = (yaml: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'kw-teleport-bad-'));
    writeFileSync(join(dir, 'teleport.yaml'), yaml);
    return runCommand(bin('keyway'), ['start', '-c', join(dir, 'teleport.yaml')], { env: { PATH: process.env['PATH'], HOME: dir }, timeoutMs: 60_000 });
  };

  it("names an unknown field by the file's spelling, and two spellings that disagree", async () => {
    const r = await run(`version: v3\nteleport: {data_dir: /tmp/a}\ndata_dir: /tmp/b\nproxy_service: {web_listen_addr: nowhere, colour: blue}\n`);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('teleport.data_dir ("/tmp/a") and data_dir ("/tmp/b") say different things: give one of them');
    expect(r.stderr).toContain('proxy_service.web_listen_addr: must be host:port');
    expect(r.stderr).toContain('proxy_service.colour: unknown field');
  }, 60_000);

  it('says how to run a kubernetes_service without a proxy in the same process', async () => {
    const r = await run('version: v3\nproxy_service: {enabled: no}\nkubernetes_service: {enabled: yes, kubeconfig_file: kc.yaml}\n');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('kubernetes_service is enabled but proxy_service is not');
  }, 60_000);
});
