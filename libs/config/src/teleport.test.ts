import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GO_YAML_BOOLEAN_SPELLINGS, goYamlBoolean } from './go-yaml.js';
import { loadConfig } from './load.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'keyway-teleport-'));

function load(yaml: string, env: NodeJS.ProcessEnv = {}) {
  const cwd = tmp();
  writeFileSync(join(cwd, 'teleport.yaml'), yaml);
  return loadConfig({ file: 'teleport.yaml', cwd, env });
}

function failure(yaml: string): string {
  try {
    load(yaml);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected the configuration to be refused');
}

const SEED = `version: v3
teleport:
  nodename: keyway-1
  data_dir: /var/lib/teleport
  log: {output: stderr, severity: DEBUG, format: {output: json}}
  join_params: {token_name: abc, method: token}
  ca_pin: sha256:0123
auth_service:
  enabled: yes
  cluster_name: acme
  listen_addr: 0.0.0.0:3025
  public_addr: auth.acme.test:3025
  authentication: {type: local, second_factor: "on"}
proxy_service:
  enabled: yes
  web_listen_addr: 0.0.0.0:443
  public_addr: keyway.acme.test:443
  kubernetes:
    enabled: yes
    listen_addr: 0.0.0.0:3026
    public_addr: [k8s.acme.test:3026]
    kubeconfig_file: /etc/kube/admin.kubeconfig
ssh_service:
  enabled: yes
`;

describe('teleport.yaml', () => {
  it("reads the seed's file in Keyway's terms, warning about ssh_service", () => {
    const cfg = load(SEED);
    expect(cfg.version).toBe('v3');
    expect(cfg.dataDir).toBe('/var/lib/teleport');
    expect(cfg.log.level).toBe('debug');
    expect(cfg.cluster_name).toBe('acme');
    expect(cfg.join_params).toEqual({ token_name: 'abc', method: 'token' });
    expect(cfg.ca_pin).toEqual(['sha256:0123']);
    expect(cfg.auth_service).toMatchObject({ enabled: true, listen_addr: '0.0.0.0:3025', public_addr: ['auth.acme.test:3025'] });
    expect(cfg.auth_service.authentication.second_factor).toBe('otp');
    expect(cfg.proxy_service).toMatchObject({ enabled: true, listen_addr: '0.0.0.0:443', public_addr: ['keyway.acme.test:443'] });
    expect(cfg.proxy_service.kubernetes).toMatchObject({
      enabled: true,
      listen_addr: '0.0.0.0:3026',
      public_addr: ['k8s.acme.test:3026'],
      kubeconfig_file: '/etc/kube/admin.kubeconfig',
    });
    // Absent: Teleport's default, no kubernetes_service.
    expect(cfg.kubernetes_service.enabled).toBe(false);
    expect(cfg.nodename).toBe('keyway-1');
    expect(cfg.warnings).toEqual(['ssh_service is ignored: Keyway has no SSH service yet']);
  });

  it('takes the older kube_listen_addr spellings and a kubernetes_service', () => {
    const cfg = load(`version: v2
teleport: {auth_servers: ['auth.acme.test:3025'], proxy_server: proxy.acme.test:443, auth_token: tok}
proxy_service: {kube_listen_addr: 0.0.0.0:3026, kube_public_addr: k.acme.test:3026, listen_addr: 0.0.0.0:3023, tunnel_listen_addr: 0.0.0.0:3024}
kubernetes_service:
  enabled: on
  kubeconfig_file: kc.yaml
  kube_cluster_name: prod
  labels: {env: "yes", tier: 1}
  resources: [{labels: {'*': '*'}}]
`);
    expect(cfg.auth_server).toBe('auth.acme.test:3025');
    expect(cfg.kubernetes_service).toMatchObject({ enabled: true, proxy_addr: 'proxy.acme.test:443', kubeconfig_file: 'kc.yaml', kube_cluster_name: 'prod' });
    expect(cfg.kubernetes_service.labels).toEqual({ env: 'yes', tier: '1' });
    expect(cfg.join_params?.token_name).toBe('tok');
    expect(cfg.proxy_service.listen_addr).toBe('0.0.0.0:3080');
    expect(cfg.proxy_service.kubernetes).toMatchObject({ listen_addr: '0.0.0.0:3026', public_addr: ['k.acme.test:3026'] });
    expect(cfg.warnings.join('\n')).toMatch(/proxy_service\.listen_addr is Teleport's SSH proxy listener/);
    expect(cfg.warnings.join('\n')).toMatch(/proxy_service\.tunnel_listen_addr .*web port/);
    expect(cfg.warnings.join('\n')).toMatch(/kubernetes_service\.resources .*kubeconfig_file/);
  });

  it("keeps Keyway's own keyway.yaml as it was, listen_addr being the web port", () => {
    const cfg = load('cluster_name: k\nproxy_service: {listen_addr: 0.0.0.0:3080, enabled: true}\n');
    expect(cfg.proxy_service.listen_addr).toBe('0.0.0.0:3080');
    expect(cfg.warnings).toEqual([]);
  });

  it('accepts both spellings when they agree and names both when they do not', () => {
    expect(load('teleport: {data_dir: /d}\ndata_dir: /d\n').dataDir).toBe('/d');
    expect(failure('teleport: {data_dir: /a}\ndata_dir: /b\n')).toContain('teleport.data_dir ("/a") and data_dir ("/b") say different things: give one of them');
    expect(failure('auth_service: {cluster_name: a}\ncluster_name: b\n')).toContain('auth_service.cluster_name ("a") and cluster_name ("b")');
    expect(failure('proxy_service: {web_listen_addr: ":443", listen_addr: ":3080"}\n')).toContain('proxy_service.web_listen_addr (":443") and proxy_service.listen_addr (":3080")');
    expect(failure('teleport: {log: {severity: INFO}}\nlog: {level: debug}\n')).toContain('teleport.log.severity ("INFO") and log.level ("debug")');
  });

  it("names an unknown field by the file's spelling", () => {
    expect(failure('version: v3\nproxy_service: {web_listen_addr: nonsense}\n')).toContain('proxy_service.web_listen_addr: must be host:port');
    expect(failure('teleport: {colour: blue}\n')).toContain('teleport.colour: unknown field');
    expect(failure('teleport: {log: {severity: LOUD}}\n')).toContain('teleport.log.severity: "LOUD" is not a level');
    expect(failure('teleport: {join_params: {method: iam, token_name: x}}\n')).toMatch(/teleport\.join_params\.method: /);
    expect(failure('auth_service: {colour: blue}\n')).toContain('auth_service.colour: unknown field');
    expect(failure('proxy_service: {kubernetes: {colour: blue}}\n')).toContain('proxy_service.kubernetes.colour: unknown field');
    expect(failure('auth_service: {authentication: {second_factor: webauthn}}\n')).toContain('use otp (TOTP) or off');
    expect(failure('teleport: {storage: {type: etcd}}\n')).toContain('teleport.storage.type: "etcd" is not a Keyway store');
  });

  it('maps Teleport storage and warns about settings Keyway does not implement', () => {
    const cfg = load(`teleport:
  storage: {type: postgresql, conn_string: "postgres://db/teleport", audit_events_uri: ['postgresql://db/audit']}
  diag_addr: 0.0.0.0:3000
  log: {output: /var/log/teleport.log, format: {output: text, extra_fields: [caller]}}
auth_service: {tokens: ['proxy,node:secret'], authentication: {webauthn: {rp_id: x}}}
app_service: {enabled: no}
`);
    expect(cfg.storage).toEqual({ type: 'postgres', connString: 'postgres://db/teleport' });
    const w = cfg.warnings.join('\n');
    expect(w).toContain('app_service (disabled) is ignored');
    expect(w).toContain('teleport.diag_addr');
    expect(w).toContain('teleport.storage.audit_events_uri');
    expect(w).toContain('teleport.log.output "/var/log/teleport.log"');
    expect(w).toContain('teleport.log.format.output "text"');
    expect(w).toContain('auth_service.tokens is a Teleport setting Keyway does not implement (ignored): static join tokens are not supported; create them with `kwctl tokens add');
    expect(w).toContain('auth_service.authentication.webauthn');
  });

  it('reads every Go YAML boolean spelling in boolean fields, and only there', () => {
    fc.assert(
      fc.property(fc.constantFrom(...GO_YAML_BOOLEAN_SPELLINGS), fc.constantFrom('auth_service', 'proxy_service', 'kubernetes_service'), (spelling, section) => {
        const yaml =
          section === 'kubernetes_service'
            ? `kubernetes_service: {enabled: ${spelling}, kube_cluster_name: "${spelling}"}\n`
            : `${section}: {enabled: ${spelling}}\nkubernetes_service: {kube_cluster_name: "${spelling}"}\n`;
        const cfg = load(yaml);
        const expected = goYamlBoolean(spelling);
        expect(cfg[section as 'auth_service'].enabled).toBe(expected);
        expect(cfg.kubernetes_service.kube_cluster_name).toBe(spelling);
      }),
      { numRuns: 60 },
    );
    // Through the environment the same.
    expect(loadConfig({ cwd: tmp(), env: { KEYWAY_PROXY_SERVICE__ENABLED: 'No' } }).proxy_service.enabled).toBe(false);
    expect(failure('proxy_service: {enabled: maybe}\n')).toMatch(/proxy_service\.enabled: .*boolean/i);
  });

  it('goYamlBoolean: true, false or nothing for any string', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const b = goYamlBoolean(s);
        expect(b === undefined || GO_YAML_BOOLEAN_SPELLINGS.includes(s)).toBe(true);
        if (b !== undefined) expect(/^(y|yes|on|true)$/i.test(s)).toBe(b);
      }),
    );
  });
});
