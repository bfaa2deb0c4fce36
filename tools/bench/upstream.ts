/**
 * The proxy benchmark's stand-in API server, run as its own process (as a real API server is):
 * answers a pod GET, and a configmap list of any size (`?bytes=N`) generated as it streams.
 * Prints one JSON line with its port and the credentials to reach it, then serves until killed.
 */
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { ca as authCa } from '@keyway/auth';
import { generateKeyPair } from '@keyway/pki';

const POD = JSON.stringify({ kind: 'Pod', apiVersion: 'v1', metadata: { name: 'bench', namespace: 'default', uid: 'x'.repeat(36) }, spec: { containers: [{ name: 'c', image: 'busybox' }] }, status: { phase: 'Running' } });

export interface UpstreamInfo {
  port: number;
  caPem: string;
  client: { cert: string; key: string };
  kubeconfig: string;
}

async function startUpstream(): Promise<UpstreamInfo> {
  const hostCa = authCa.createCertAuthority({ type: 'host', clusterName: 'upstream' });
  const signer = new authCa.CertSigner({ certPem: hostCa.certPem, privateKey: hostCa.privateKeyPem });
  const identity = (name: string, role: 'Auth' | 'Kube') => ({
    username: name,
    roles: [role],
    traits: {},
    kubernetesUsers: [],
    kubernetesGroups: [],
    clusterName: 'upstream',
    mfaVerified: false,
    systemRoles: [role],
  });
  const serverKey = generateKeyPair();
  const server = signer.signHostCertificate({ publicKey: serverKey.publicKeyPem, identity: identity('apiserver', 'Auth'), dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], notAfter: new Date(Date.now() + 86_400_000) });
  const clientKey = generateKeyPair();
  const client = signer.signHostCertificate({ publicKey: clientKey.publicKeyPem, identity: identity('agent', 'Kube'), dnsNames: [], ipAddresses: [], notAfter: new Date(Date.now() + 86_400_000) });
  const item = Buffer.from(`{"metadata":{"name":"cm","namespace":"default"},"data":{"k":"${'v'.repeat(900)}"}},`);
  const chunk = Buffer.concat(Array.from({ length: 64 }, () => item));
  const srv = https.createServer({ cert: server.certPem, key: serverKey.privateKeyPem, ca: hostCa.certPem, requestCert: true, rejectUnauthorized: true, keepAliveTimeout: 60_000, noDelay: true }, (req, res) => {
    if (req.url?.startsWith('/api/v1/namespaces/default/configmaps')) {
      const total = Number(new URL(req.url, 'https://x').searchParams.get('bytes') ?? 0);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"kind":"ConfigMapList","apiVersion":"v1","items":[');
      let sent = 0;
      const pump = () => {
        while (sent < total) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end('{}]}');
      };
      pump();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(POD) });
    res.end(POD);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as AddressInfo).port;
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const kubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: bench, cluster: {server: 'https://127.0.0.1:${port}', certificate-authority-data: ${b64(hostCa.certPem)}}}]
users: [{name: bench, user: {client-certificate-data: ${b64(client.certPem)}, client-key-data: ${b64(clientKey.privateKeyPem)}}}]
contexts: [{name: bench, context: {cluster: bench, user: bench}}]
current-context: bench
`;
  return { port, caPem: hostCa.certPem, client: { cert: client.certPem, key: clientKey.privateKeyPem }, kubeconfig };
}

const info = await startUpstream();
process.stdout.write(`${JSON.stringify(info)}\n`);
