export { authTestEnv, createTestDatabase, type TestDatabase } from './database.js';
export { readAll, socketPair } from './sockets.js';
export { adminDatabaseUrl } from './global-setup.js';
export { captureStream } from './capture.js';
export { runCommand, startProcess, type LongRunning, type RunResult } from './process.js';
export { startTcpBalancer, type TcpBalancer } from './tcp-balancer.js';
export { freePort, startOwnPostgres, startOwnRedis, type OwnService } from './own-services.js';
export {
  startTestKubeApiServer,
  runKubectl,
  startKubectl,
  KUBECTL,
  createTestCa,
  SpdySession,
  SpdyStream,
  RstStatus,
  type TestKubeApiServer,
  type StartTestKubeApiServerOptions,
  type RecordedRequest,
  type TestPodSpec,
  type TestRbacRule,
  type UserInfo,
  type SyntheticListOptions,
  type KubeconfigIdentity,
  type KubeObject,
  type PodLogSource,
  type LogRequest,
  type TcpTarget,
  type FakeCommand,
  type ExecIo,
  type ExecContext,
  type TerminalSize,
  type TestCa,
  type CertAndKey,
  type SpdyHeaders,
  type KubectlOptions,
} from './kube-api/index.js';
