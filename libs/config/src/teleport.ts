import { isDeepStrictEqual } from 'node:util';
import { goYamlBoolean } from './go-yaml.js';

/**
 * teleport.yaml as written: Teleport's spellings of the fields Keyway has are moved to
 * Keyway's (one schema, two spellings), Teleport fields Keyway does not implement become
 * warnings that say what to use instead, and sections of services Keyway does not have
 * are warnings naming them. Everything left over goes to the schema, which refuses
 * unknown fields by name.
 */
export interface TeleportMapping {
  /** The configuration in Keyway's spelling, for the schema. */
  config: Record<string, unknown>;
  /** One sentence each, naming the field. */
  warnings: string[];
  /** Problems found while mapping (two spellings that disagree, a value Keyway cannot take). */
  problems: string[];
  /** Keyway path → the path as the file spells it, so schema errors name the file's field. */
  renamed: [string, string][];
}

/** Service sections of Teleport that Keyway does not run. */
const OTHER_SERVICES: Record<string, string> = {
  ssh_service: 'Keyway has no SSH service yet',
  app_service: 'Keyway has no application access',
  db_service: 'Keyway has no database access',
  windows_desktop_service: 'Keyway has no desktop access',
  discovery_service: 'Keyway does not discover clusters; list them in kubernetes_service.kubeconfig_file',
  jamf_service: 'Keyway has no Jamf integration',
  okta_service: 'Keyway has no Okta service; use an oidc or saml connector',
  tracing_service: 'Keyway has no tracing service',
  metrics_service: 'Keyway has no metrics service',
  debug_service: 'Keyway has no debug service',
  plugins: 'Keyway has no plugins',
};

/** teleport.* fields Keyway does not implement, with what to do instead. */
const TELEPORT_UNSUPPORTED: Record<string, string> = {
  pid_file: 'Keyway writes no pid file',
  diag_addr: "use the proxy's /healthz and /readyz on its web port",
  advertise_ip: 'set proxy_service.public_addr',
  cache: 'Keyway proxies always keep a watched cache',
  connection_limits: 'use proxy_service.kubernetes.upstream and auth_service.rate_limits',
  cipher_suites: "Keyway uses Node's TLS defaults (TLS 1.2+)",
  ciphers: 'Keyway has no SSH yet',
  kex_algorithms: 'Keyway has no SSH yet',
  mac_algorithms: 'Keyway has no SSH yet',
  ca_signature_algo: 'Keyway signs with ECDSA P-256',
  shutdown_delay: 'Keyway drains on SIGTERM',
};

const AUTH_UNSUPPORTED: Record<string, string> = {
  tokens: 'static join tokens are not supported; create them with `kwctl tokens add --type=kube` (or --type=proxy)',
  proxy_listener_mode: 'Keyway always routes by TLS on the one proxy port',
  session_recording: 'Keyway records exec and attach sessions at the proxy',
  license_file: 'Keyway needs no license',
  client_idle_timeout: 'use proxy_service.timeouts.idle',
  keep_alive_interval: 'use auth_service.grpc.keepalive_interval',
  keep_alive_count_max: 'use auth_service.grpc.keepalive_timeout',
  disconnect_expired_cert: 'Keyway always ends sessions when their certificate expires',
  message_of_the_day: 'Keyway shows no message of the day',
  routing_strategy: 'Keyway routes to any agent of a cluster',
  tunnel_strategy: 'agents keep a tunnel to every proxy',
  proxy_ping_interval: 'Keyway sets its own',
  web_idle_timeout: 'use proxy_service.timeouts.web_idle',
  ca_key_params: 'use auth_service.ca_key_file or KEYWAY_CA_KEY',
  case_insensitive_routing: 'cluster names are matched exactly',
};

const AUTHN_UNSUPPORTED: Record<string, string> = {
  webauthn: "Keyway's second factor is TOTP (second_factor: otp)",
  u2f: "Keyway's second factor is TOTP (second_factor: otp)",
  require_session_mfa: 'Keyway checks a second factor at login',
  passwordless: "Keyway's logins take a password",
  allow_passwordless: "Keyway's logins take a password",
  allow_headless: 'Keyway has no headless login',
  local_auth: 'local logins are always on',
  device_trust: 'Keyway has no device trust',
  default_session_ttl: "use the roles' max_session_ttl",
};

const PROXY_UNSUPPORTED: Record<string, string> = {
  tunnel_listen_addr: 'agents reach Keyway on the web port (proxy_service.web_listen_addr)',
  tunnel_public_addr: 'agents reach Keyway on proxy_service.public_addr',
  ssh_public_addr: 'Keyway has no SSH yet',
  peer_listen_addr: 'agents keep a tunnel to every proxy',
  peer_public_addr: 'agents keep a tunnel to every proxy',
  mysql_listen_addr: 'Keyway has no database access',
  mysql_public_addr: 'Keyway has no database access',
  postgres_listen_addr: 'Keyway has no database access',
  postgres_public_addr: 'Keyway has no database access',
  mongo_listen_addr: 'Keyway has no database access',
  mongo_public_addr: 'Keyway has no database access',
  proxy_protocol: 'Keyway reads no PROXY protocol header',
  acme: 'give a certificate with proxy_service.https_keypairs',
  trust_x_forwarded_for: 'Keyway takes the client address from the connection',
  ui: 'Keyway has no web UI yet',
  idp: 'Keyway is not an identity provider',
};

const KUBE_SERVICE_UNSUPPORTED: Record<string, string> = {
  resources: 'Keyway serves the clusters of kubernetes_service.kubeconfig_file (or the in-cluster one); it does not match kube_cluster resources by label',
  listen_addr: 'Keyway agents dial out to the proxy; they listen on nothing',
  public_addr: 'Keyway agents dial out to the proxy; give the proxy a public_addr',
};

const SEVERITIES: Record<string, string> = { trace: 'trace', debug: 'debug', info: 'info', warn: 'warn', warning: 'warn', error: 'error' };

type Tree = Record<string, unknown>;

function isTree(v: unknown): v is Tree {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function fromTeleport(file: Tree): TeleportMapping {
  const config = structuredClone(file);
  const warnings: string[] = [];
  const problems: string[] = [];
  const renamed: [string, string][] = [];
  // In a Teleport file proxy_service.listen_addr is the SSH proxy's; in Keyway's, the web port.
  const teleportFile = 'teleport' in config || config['version'] === 'v2' || config['version'] === 'v3';

  const get = (path: string[]): unknown => path.reduce<unknown>((node, k) => (isTree(node) ? node[k] : undefined), config);
  const del = (path: string[]) => {
    const parent = get(path.slice(0, -1));
    if (isTree(parent)) delete parent[path[path.length - 1] as string];
  };
  const set = (path: string[], value: unknown) => {
    let node = config;
    for (const k of path.slice(0, -1)) {
      if (!isTree(node[k])) node[k] = {};
      node = node[k] as Tree;
    }
    node[path[path.length - 1] as string] = value;
  };
  /** Moves a Teleport spelling to Keyway's; both given with different values is a problem. */
  const move = (from: string[], to: string[], transform: (v: unknown) => unknown = (v) => v) => {
    const value = get(from);
    if (value === undefined) return;
    del(from);
    const mapped = transform(value);
    const existing = get(to);
    if (existing !== undefined && !isDeepStrictEqual(existing, mapped)) {
      problems.push(`${from.join('.')} (${JSON.stringify(value)}) and ${to.join('.')} (${JSON.stringify(existing)}) say different things: give one of them`);
      return;
    }
    set(to, mapped);
    if (from.join('.') !== to.join('.')) renamed.push([to.join('.'), from.join('.')]);
  };
  const unsupported = (section: string[], fields: Record<string, string>) => {
    const node = get(section);
    if (!isTree(node)) return;
    for (const [field, instead] of Object.entries(fields)) {
      if (!(field in node)) continue;
      delete node[field];
      warnings.push(`${[...section, field].join('.')} is a Teleport setting Keyway does not implement (ignored): ${instead}`);
    }
  };
  const list = (v: unknown) => (typeof v === 'string' ? [v] : v);

  // Services Keyway does not have: a warning each, whatever they hold.
  for (const [section, why] of Object.entries(OTHER_SERVICES)) {
    if (!(section in config)) continue;
    const enabled = isTree(config[section]) ? goYamlBoolean(config[section]['enabled']) : undefined;
    warnings.push(`${section}${enabled === false ? ' (disabled)' : ''} is ignored: ${why}`);
    delete config[section];
  }

  const teleport = config['teleport'];
  if (teleport !== undefined && !isTree(teleport)) problems.push('teleport: must be a mapping');
  if (isTree(teleport)) {
    unsupported(['teleport'], TELEPORT_UNSUPPORTED);
    move(['teleport', 'data_dir'], ['data_dir']);
    move(['teleport', 'nodename'], ['nodename']);
    move(['teleport', 'auth_server'], ['auth_server']);
    move(['teleport', 'auth_servers'], ['auth_server'], (v) => {
      if (Array.isArray(v) && v.length > 1) warnings.push('teleport.auth_servers lists several: Keyway dials the first (put auth replicas behind one address)');
      return Array.isArray(v) ? v[0] : v;
    });
    // Where an agent dials: Teleport names the proxy; Keyway agents always go through it.
    move(['teleport', 'proxy_server'], ['kubernetes_service', 'proxy_addr']);
    move(['teleport', 'join_params'], ['join_params']);
    move(['teleport', 'auth_token'], ['join_params', 'token_name']);
    move(['teleport', 'ca_pin'], ['ca_pin'], list);
    mapStorage(teleport, problems, warnings, move);
    mapLog(teleport, problems, warnings, move);
    for (const field of Object.keys(teleport)) problems.push(`teleport.${field}: unknown field`);
    delete config['teleport'];
  }

  const auth = config['auth_service'];
  if (isTree(auth)) {
    unsupported(['auth_service'], AUTH_UNSUPPORTED);
    unsupported(['auth_service', 'authentication'], AUTHN_UNSUPPORTED);
    move(['auth_service', 'cluster_name'], ['cluster_name']);
    const pa = auth['public_addr'];
    if (typeof pa === 'string') auth['public_addr'] = [pa];
    const authn = auth['authentication'];
    if (isTree(authn)) {
      const sf = authn['second_factor'];
      // Teleport's "on" asks for any second factor; Keyway's only one is TOTP.
      if (sf === 'on' || goYamlBoolean(sf) === true) authn['second_factor'] = 'otp';
      else if (goYamlBoolean(sf) === false) authn['second_factor'] = 'off';
      else if (sf === 'optional' || sf === 'webauthn') problems.push(`auth_service.authentication.second_factor: "${sf}" is not available in Keyway: use otp (TOTP) or off`);
    }
  }

  const proxy = config['proxy_service'];
  if (isTree(proxy)) {
    unsupported(['proxy_service'], PROXY_UNSUPPORTED);
    if (teleportFile && 'listen_addr' in proxy) {
      delete proxy['listen_addr'];
      warnings.push("proxy_service.listen_addr is Teleport's SSH proxy listener, which Keyway does not have yet (ignored): the web, kube and tunnel port is proxy_service.web_listen_addr");
    }
    move(['proxy_service', 'web_listen_addr'], ['proxy_service', 'listen_addr']);
    move(['proxy_service', 'public_addr'], ['proxy_service', 'public_addr'], list);
    move(['proxy_service', 'kube_listen_addr'], ['proxy_service', 'kubernetes', 'listen_addr']);
    move(['proxy_service', 'kube_public_addr'], ['proxy_service', 'kubernetes', 'public_addr'], list);
    move(['proxy_service', 'kubernetes', 'public_addr'], ['proxy_service', 'kubernetes', 'public_addr'], list);
    if ('https_cert_file' in proxy || 'https_key_file' in proxy) {
      const pair = { cert_file: proxy['https_cert_file'], key_file: proxy['https_key_file'] };
      delete proxy['https_cert_file'];
      delete proxy['https_key_file'];
      proxy['https_keypairs'] = [pair, ...(Array.isArray(proxy['https_keypairs']) ? proxy['https_keypairs'] : [])];
    }
  }

  const kube = config['kubernetes_service'];
  if (isTree(kube)) {
    unsupported(['kubernetes_service'], KUBE_SERVICE_UNSUPPORTED);
    // Label values are strings in Teleport (Go reads `tier: 1` into a string too).
    const labels = kube['labels'];
    if (isTree(labels)) {
      for (const [k, v] of Object.entries(labels)) if (typeof v === 'number' || typeof v === 'boolean') labels[k] = String(v);
    }
  }

  return { config, warnings, problems, renamed };
}

type Move = (from: string[], to: string[], transform?: (v: unknown) => unknown) => void;

/** teleport.storage: Postgres is Keyway's store; Teleport's local backends are the embedded one. */
function mapStorage(teleport: Tree, problems: string[], warnings: string[], move: Move): void {
  const storage = teleport['storage'];
  if (storage === undefined) return;
  if (!isTree(storage)) {
    problems.push('teleport.storage: must be a mapping');
    delete teleport['storage'];
    return;
  }
  const type = storage['type'];
  if (type === 'postgresql' || type === 'postgres') {
    move(['teleport', 'storage', 'type'], ['auth_service', 'storage', 'type'], () => 'postgres');
    move(['teleport', 'storage', 'conn_string'], ['auth_service', 'storage', 'conn_string']);
  } else if (type === 'dir' || type === 'sqlite' || type === undefined) {
    move(['teleport', 'storage', 'type'], ['auth_service', 'storage', 'type'], () => 'embedded');
    if ('path' in storage) {
      move(['teleport', 'storage', 'path'], ['auth_service', 'storage', 'data_dir']);
    }
  } else {
    problems.push(`teleport.storage.type: "${String(type)}" is not a Keyway store: use postgresql (with conn_string) or dir (the embedded store under data_dir)`);
    delete storage['type'];
  }
  for (const field of ['audit_events_uri', 'audit_sessions_uri']) {
    if (field in storage) {
      delete storage[field];
      warnings.push(`teleport.storage.${field} is a Teleport setting Keyway does not implement (ignored): Keyway keeps audit events in its store and recordings with auth`);
    }
  }
  for (const field of Object.keys(storage)) problems.push(`teleport.storage.${field}: unknown field`);
  delete teleport['storage'];
}

/** teleport.log: severity is Keyway's log.level; Keyway writes JSON lines to stderr. */
function mapLog(teleport: Tree, problems: string[], warnings: string[], move: Move): void {
  const log = teleport['log'];
  if (log === undefined) return;
  if (!isTree(log)) {
    problems.push('teleport.log: must be a mapping');
    delete teleport['log'];
    return;
  }
  const severity = log['severity'];
  if (severity !== undefined) {
    const level = typeof severity === 'string' ? SEVERITIES[severity.toLowerCase()] : undefined;
    if (level) move(['teleport', 'log', 'severity'], ['log', 'level'], () => level);
    else {
      problems.push(`teleport.log.severity: ${JSON.stringify(severity)} is not a level: use one of DEBUG, INFO, WARN, ERROR (or TRACE)`);
      delete log['severity'];
    }
  }
  const output = log['output'];
  if (output !== undefined) {
    if (output !== 'stderr' && output !== 'stdout' && typeof output === 'string') {
      warnings.push(`teleport.log.output "${output}" is not implemented (ignored): Keyway logs to stderr; redirect it (2>>${output})`);
    } else if (output === 'stdout') {
      warnings.push('teleport.log.output "stdout" is not implemented (ignored): Keyway logs to stderr; redirect it (2>&1)');
    } else if (typeof output !== 'string') {
      problems.push('teleport.log.output: must be stderr, stdout, syslog or a file path');
    }
    delete log['output'];
  }
  const format = log['format'];
  if (format !== undefined) {
    if (!isTree(format)) problems.push('teleport.log.format: must be a mapping ({output: json})');
    else {
      if (format['output'] !== undefined && format['output'] !== 'json') {
        warnings.push(`teleport.log.format.output "${String(format['output'])}" is not implemented (ignored): Keyway writes JSON lines`);
      }
      if (format['extra_fields'] !== undefined) warnings.push('teleport.log.format.extra_fields is not implemented (ignored): Keyway always writes time, level, component and message');
      for (const field of Object.keys(format)) if (field !== 'output' && field !== 'extra_fields') problems.push(`teleport.log.format.${field}: unknown field`);
    }
    delete log['format'];
  }
  for (const field of Object.keys(log)) problems.push(`teleport.log.${field}: unknown field`);
  delete teleport['log'];
}
