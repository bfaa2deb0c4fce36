export {
  startTestKubeApiServer,
  parseRequestInfo,
  type TestKubeApiServer,
  type StartTestKubeApiServerOptions,
  type RecordedRequest,
  type TestPodSpec,
  type SyntheticListOptions,
  type KubeconfigIdentity,
  type KubeObject,
} from './server.js';
export { type TestRbacRule, type UserInfo } from './auth.js';
export { type PodLogSource, type LogRequest } from './logs.js';
export { type TcpTarget } from './portforward.js';
export { type FakeCommand, type ExecIo, type ExecContext, type TerminalSize } from './shell.js';
export { createTestCa, type TestCa, type CertAndKey } from './pki.js';
export { SpdySession, SpdyStream, RstStatus, type SpdyHeaders } from './spdy.js';
export { KUBECTL, runKubectl, startKubectl, type KubectlOptions } from './kubectl.js';
